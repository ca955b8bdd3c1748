"""WebAuthn registration and authentication for one subject at a time.

Rules:
- Each ceremony starts with a 32-byte challenge from the keyring RNG, kept in
  the MFA store as the subject's one open challenge for that ceremony (a new
  one replaces it) with ``challenge_ttl``; finishing takes it atomically, so
  a challenge answers at most one response.
- Registration keeps the subject's user handle stable: 32 random bytes the
  first time, the stored one after that; the open registration challenge
  record holds ``challenge || user handle`` until the response comes back.
  Credentials already registered are excluded, and an id registered to
  anyone is refused.
- Authentication allows only the subject's credentials and moves the stored
  counter with a compare-and-set: of two concurrent assertions with the same
  counter at most one passes (the other is ``replayed``). A correctly signed
  assertion whose counter did not grow fails with reason ``sign_count`` (a
  cloned key or a replay: worth an alert).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from proxy.auth import webauthn
from proxy.mfa.errors import MfaStateError
from proxy.mfa.outcome import MfaOutcome, MfaResult, passed
from proxy.mfa.records import Ceremony, WebAuthnCredential
from proxy.mfa.store import MfaRecordStore


class WebAuthnFlow:
    """Options and response checks for both ceremonies, with stored state."""

    def __init__(
        self,
        *,
        store: MfaRecordStore,
        rp: webauthn.RelyingParty,
        random_bytes: Callable[[int], bytes],
        challenge_ttl: float,
        acr: str,
    ) -> None:
        self._store = store
        self.rp = rp
        self._random = random_bytes
        self._ttl = challenge_ttl
        self._acr = acr

    async def registration_options(self, subject: str, *, user_name: str, now: float) -> str:
        """JSON for ``navigator.credentials.create()``; opens the registration challenge."""
        existing = await self._store.webauthn_credentials(subject)
        handle = existing[0].user_handle if existing else self._random(webauthn.USER_HANDLE_BYTES)
        challenge = self._random(webauthn.CHALLENGE_BYTES)
        await self._store.put_challenge(
            subject, Ceremony.REGISTER, challenge + handle, expires_at=_dt(now + self._ttl)
        )
        return webauthn.registration_options(
            self.rp,
            user_handle=handle,
            user_name=user_name,
            challenge=challenge,
            exclude=[c.credential_id for c in existing],
        )

    async def register(self, subject: str, response_json: str, *, now: float) -> MfaResult:
        """Verify a ``create()`` response and store the credential (``enrolled``)."""
        state = await self._store.take_challenge(subject, Ceremony.REGISTER, now=_dt(now))
        if state is None or len(state) != webauthn.CHALLENGE_BYTES + webauthn.USER_HANDLE_BYTES:
            return _result(MfaOutcome.FAILED, subject, "no_challenge")
        challenge, handle = state[: webauthn.CHALLENGE_BYTES], state[webauthn.CHALLENGE_BYTES :]
        try:
            new = webauthn.verify_registration(self.rp, response_json, challenge=challenge)
        except webauthn.WebAuthnError as e:
            return _result(MfaOutcome.FAILED, subject, "invalid_response", detail=e.reason)
        credential = WebAuthnCredential(
            subject=subject,
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            user_handle=handle,
            aaguid=new.aaguid,
            created_at=_dt(now),
        )
        if not await self._store.add_webauthn_credential(credential):
            return _result(MfaOutcome.FAILED, subject, "duplicate_credential")
        return _result(MfaOutcome.ENROLLED, subject, "ok")

    async def authentication_options(self, subject: str, *, now: float) -> str:
        """JSON for ``navigator.credentials.get()``; MfaStateError if nothing is registered."""
        existing = await self._store.webauthn_credentials(subject)
        if not existing:
            raise MfaStateError("mfa: no webauthn credential registered")
        challenge = self._random(webauthn.CHALLENGE_BYTES)
        await self._store.put_challenge(
            subject, Ceremony.AUTHENTICATE, challenge, expires_at=_dt(now + self._ttl)
        )
        return webauthn.authentication_options(
            self.rp, challenge=challenge, allow=[c.credential_id for c in existing]
        )

    async def authenticate(self, subject: str, response_json: str, *, now: float) -> MfaResult:
        """Verify a ``get()`` response against the subject's credential (``passed``)."""
        challenge = await self._store.take_challenge(subject, Ceremony.AUTHENTICATE, now=_dt(now))
        if challenge is None:
            return _result(MfaOutcome.FAILED, subject, "no_challenge")
        try:
            claimed = webauthn.credential_id_of(response_json)
            stored = await self._credential(subject, claimed)
            if stored is None:
                return _result(MfaOutcome.FAILED, subject, "unknown_credential")
            assertion = webauthn.verify_authentication(
                self.rp,
                response_json,
                challenge=challenge,
                credential=webauthn.StoredCredential(
                    stored.credential_id, stored.public_key, stored.sign_count, stored.user_handle
                ),
            )
        except webauthn.SignCountRegression as e:
            return _result(MfaOutcome.FAILED, subject, "sign_count", detail=e.reason)
        except webauthn.WebAuthnError as e:
            return _result(MfaOutcome.FAILED, subject, "invalid_response", detail=e.reason)
        moved = await self._store.update_sign_count(
            subject,
            stored.credential_id,
            expected=stored.sign_count,
            new=assertion.new_sign_count,
            at=_dt(now),
        )
        if not moved:
            return _result(MfaOutcome.REPLAYED, subject, "replayed")
        return passed(subject, "hwk", acr=self._acr, now=now)

    async def credentials(self, subject: str) -> list[WebAuthnCredential]:
        """The subject's registered credentials (public data only)."""
        return await self._store.webauthn_credentials(subject)

    async def remove(self, subject: str, credential_id: bytes) -> bool:
        """Delete one of the subject's credentials."""
        return await self._store.delete_webauthn_credential(subject, credential_id)

    async def _credential(self, subject: str, credential_id: bytes) -> WebAuthnCredential | None:
        found: WebAuthnCredential | None = None
        for credential in await self._store.webauthn_credentials(subject):
            if hmac.compare_digest(credential.credential_id, credential_id):
                found = credential
        return found


def _result(outcome: MfaOutcome, subject: str, reason: str, *, detail: str = "") -> MfaResult:
    return MfaResult(outcome, subject, "hwk", reason, detail=detail)


def _dt(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)
