"""MfaService: the one object the gateway calls for second factors.

It wires the TOTP, recovery-code and WebAuthn flows to one record store, the
keyring (:class:`~proxy.mfa.ports.MfaKeys`), the session store's replay guard
and failure counters (:class:`~proxy.mfa.ports.AttemptGuard`), the keyring
RNG and a clock (POSIX seconds). Every verification returns an
:class:`~proxy.mfa.outcome.MfaResult` for the caller to audit; a pass carries
:class:`~proxy.mfa.outcome.MfaPassed`, which the session layer turns into a
new session id with ``amr``, ``acr`` and ``auth_time`` raised. Errors are
kept for what cannot be an outcome: store or keyring down (503), a request
that does not fit the enrolment state (409).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kms_client.rng import random_bytes as keyring_random_bytes
from proxy.mfa.config import MfaConfig
from proxy.mfa.errors import MfaStateError
from proxy.mfa.lockout import Lockout
from proxy.mfa.outcome import MfaResult
from proxy.mfa.ports import AttemptGuard, MfaKeys
from proxy.mfa.records import WebAuthnCredential
from proxy.mfa.recovery_flow import RecoveryFlow
from proxy.mfa.store import (
    MfaRecordStore,
    check_store_uri,
    default_store_uri,
    open_mfa_store,
)
from proxy.mfa.totp_flow import TotpFlow, TotpSetup, require_subject
from proxy.mfa.webauthn_flow import WebAuthnFlow


@dataclass(frozen=True)
class EnrolledFactors:
    """Which factors a subject can use (to offer the right ones)."""

    totp: bool
    webauthn_credentials: int
    recovery_codes_left: int

    @property
    def any(self) -> bool:
        """True if the subject has at least one usable second factor."""
        return self.totp or self.webauthn_credentials > 0 or self.recovery_codes_left > 0


class MfaService:
    """Enrol and verify TOTP, recovery codes and WebAuthn keys for subjects."""

    def __init__(
        self,
        config: MfaConfig,
        *,
        store: MfaRecordStore,
        keys: MfaKeys,
        guard: AttemptGuard,
        now: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = keyring_random_bytes,
    ) -> None:
        self.store = store
        self._now = now
        self.lockout = Lockout(
            guard,
            max_failures=config.max_failures,
            window=config.failure_window,
            lock_for=config.lockout,
        )
        self._totp = TotpFlow(
            store=store,
            box=keys,
            guard=guard,
            lockout=self.lockout,
            random_bytes=random_bytes,
            params=config.totp_params(),
            issuer=config.issuer,
            enrolment_ttl=config.enrolment_ttl,
            acr=config.acr_otp,
        )
        self._recovery = RecoveryFlow(
            store=store,
            keys=keys,
            lockout=self.lockout,
            random_bytes=random_bytes,
            count=config.recovery_codes,
            acr=config.acr_recovery,
        )
        self._webauthn = (
            None
            if config.webauthn is None
            else WebAuthnFlow(
                store=store,
                rp=config.webauthn.relying_party(),
                random_bytes=random_bytes,
                challenge_ttl=config.challenge_ttl,
                acr=config.acr_hwk,
            )
        )

    # ---- TOTP ----

    async def begin_totp(self, subject: str, *, account: str) -> TotpSetup:
        """Start (or restart) a TOTP enrolment; show the result to the user once."""
        return await self._totp.begin(require_subject(subject), account=account, now=self._now())

    async def confirm_totp(self, subject: str, code: str) -> MfaResult:
        """Activate the pending enrolment with its first code: ``enrolled`` or ``failed``."""
        return await self._totp.confirm(require_subject(subject), code, now=self._now())

    async def verify_totp(self, subject: str, code: str) -> MfaResult:
        """``passed``, ``failed``, ``locked`` or ``replayed``."""
        return await self._totp.verify(require_subject(subject), code, now=self._now())

    async def remove_totp(self, subject: str) -> bool:
        """Delete the subject's TOTP enrolment."""
        return await self._totp.remove(require_subject(subject))

    # ---- recovery codes ----

    async def issue_recovery_codes(self, subject: str) -> list[str]:
        """A fresh set of codes to show once; older codes stop working."""
        return await self._recovery.issue(require_subject(subject), now=self._now())

    async def verify_recovery_code(self, subject: str, code: str) -> MfaResult:
        """Check and consume one code: ``passed``, ``failed``, ``locked`` or ``replayed``."""
        return await self._recovery.verify(require_subject(subject), code, now=self._now())

    async def remove_recovery_codes(self, subject: str) -> bool:
        """Delete the subject's recovery codes."""
        return await self._recovery.remove(require_subject(subject))

    # ---- WebAuthn ----

    async def webauthn_registration_options(self, subject: str, *, user_name: str) -> str:
        """JSON options for ``navigator.credentials.create()``."""
        flow = self._require_webauthn()
        return await flow.registration_options(
            require_subject(subject), user_name=user_name, now=self._now()
        )

    async def register_webauthn(self, subject: str, response_json: str) -> MfaResult:
        """Verify a registration response: ``enrolled`` or ``failed``."""
        flow = self._require_webauthn()
        return await flow.register(require_subject(subject), response_json, now=self._now())

    async def webauthn_authentication_options(self, subject: str) -> str:
        """JSON options for ``navigator.credentials.get()``."""
        flow = self._require_webauthn()
        return await flow.authentication_options(require_subject(subject), now=self._now())

    async def verify_webauthn(self, subject: str, response_json: str) -> MfaResult:
        """Verify an assertion: ``passed``, ``failed`` or ``replayed``."""
        flow = self._require_webauthn()
        return await flow.authenticate(require_subject(subject), response_json, now=self._now())

    async def webauthn_credentials(self, subject: str) -> list[WebAuthnCredential]:
        """The subject's registered keys (public data only)."""
        return await self.store.webauthn_credentials(require_subject(subject))

    async def remove_webauthn(self, subject: str, credential_id: bytes) -> bool:
        """Delete one registered key."""
        return await self.store.delete_webauthn_credential(require_subject(subject), credential_id)

    # ---- state ----

    async def factors(self, subject: str) -> EnrolledFactors:
        """What the subject has enrolled."""
        subject = require_subject(subject)
        keys = await self.store.webauthn_credentials(subject)
        return EnrolledFactors(
            totp=await self._totp.enrolled(subject),
            webauthn_credentials=len(keys),
            recovery_codes_left=await self._recovery.remaining(subject),
        )

    async def unlock(self, subject: str) -> None:
        """Lift a lockout and clear the failure count (an operator act; audit it)."""
        await self.lockout.unlock(require_subject(subject))

    def _require_webauthn(self) -> WebAuthnFlow:
        if self._webauthn is None:
            raise MfaStateError("mfa: webauthn is not configured")
        return self._webauthn


async def open_mfa_service(
    config: MfaConfig,
    *,
    data_dir: Path,
    keys: MfaKeys,
    guard: AttemptGuard,
    production: bool,
    prefix: str = "tokengate:mfa:",
    now: Callable[[], float] = time.time,
) -> MfaService:
    """Open the configured store (default: SQLite under ``data_dir``) and build the service.

    ConfigError for a refused store URI (production mode refuses plain-text
    Redis to a non-local host); MfaStoreUnavailable if the store cannot open.
    """
    uri = config.store or default_store_uri(data_dir)
    check_store_uri(uri, production=production)
    store = open_mfa_store(uri, data_dir=data_dir, prefix=prefix)
    await store.open()
    return MfaService(config, store=store, keys=keys, guard=guard, now=now)
