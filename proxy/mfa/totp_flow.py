"""TOTP enrolment and verification for one subject at a time.

Rules:
- Enrolment: a 20-byte secret from the keyring RNG, encrypted under purpose
  ``mfa-secrets`` with a context naming the subject (a row moved to another
  subject does not decrypt), stored as the subject's *pending* enrolment. The
  caller shows the otpauth URI / QR code once. A first valid code within
  ``enrolment_ttl`` activates it, replacing any older active enrolment, so a
  user moving to a new phone keeps the old factor until the new one works.
- Verification: locked subjects are refused first; then the code is checked
  with a one-step window; a match must be a time step never used before:
  ``first_use("totp", "<subject>:<step>")`` in the session store, and the
  stored ``last_step`` must grow (RFC 6238 section 5.2: an older code than
  the last accepted one is refused too). Wrong codes count towards the lock;
  replays do not (they prove the user typed a real code once).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from proxy.auth import totp
from proxy.mfa.errors import MfaStateError
from proxy.mfa.lockout import Lockout
from proxy.mfa.outcome import MfaOutcome, MfaResult, passed
from proxy.mfa.ports import AttemptGuard, SecretBox
from proxy.mfa.records import TotpEnrolment
from proxy.mfa.store import MfaRecordStore

PURPOSE = "mfa-secrets"
SECRET_BYTES = 20
_CONTEXT_LABEL = b"tokengate/mfa/totp-secret/v1"


@dataclass(frozen=True)
class TotpSetup:
    """What the enrolling user is shown once: never logged, cached or stored."""

    uri: str = field(repr=False)
    qr_svg: str = field(repr=False)
    secret: str = field(repr=False)  # base32, for typing into an app by hand
    expires_at: float


def secret_context(subject: str) -> bytes:
    """The AAD binding a TOTP secret ciphertext to its subject."""
    raw = subject.encode("utf-8")
    return _CONTEXT_LABEL + struct.pack(">I", len(raw)) + raw


class TotpFlow:
    """Begin, confirm, verify and remove TOTP enrolments."""

    def __init__(
        self,
        *,
        store: MfaRecordStore,
        box: SecretBox,
        guard: AttemptGuard,
        lockout: Lockout,
        random_bytes: Callable[[int], bytes],
        params: totp.TotpParams,
        issuer: str,
        enrolment_ttl: float,
        acr: str,
    ) -> None:
        self._store = store
        self._box = box
        self._guard = guard
        self._lockout = lockout
        self._random = random_bytes
        self._params = params
        self._issuer = issuer
        self._ttl = enrolment_ttl
        self._acr = acr

    async def begin(self, subject: str, *, account: str, now: float) -> TotpSetup:
        """Make and store a pending enrolment; return what the user scans or types."""
        secret = self._random(SECRET_BYTES)
        ciphertext = self._box.encrypt(PURPOSE, secret, context=secret_context(subject))
        await self._store.put_pending_totp(
            TotpEnrolment(subject, ciphertext, self._params, created_at=_dt(now))
        )
        uri = totp.provisioning_uri(
            secret, issuer=self._issuer, account=account, params=self._params
        )
        return TotpSetup(uri, totp.qr_svg(uri), totp.secret_base32(secret), now + self._ttl)

    async def confirm(self, subject: str, code: str, *, now: float) -> MfaResult:
        """Activate the pending enrolment with its first valid code."""
        pending = await self._store.get_totp(subject, pending=True)
        if pending is None:
            return _result(MfaOutcome.FAILED, subject, "not_pending")
        if now >= pending.created_at.timestamp() + self._ttl:
            return _result(MfaOutcome.FAILED, subject, "expired")
        step = self._match(subject, pending, code, now)
        if step is None:
            return _result(MfaOutcome.FAILED, subject, "bad_code")
        ttl = _replay_ttl(self._params)
        if not await self._guard.first_use("totp", f"{subject}:{step}", ttl, now=now):
            return _result(MfaOutcome.REPLAYED, subject, "replayed")
        if not await self._store.activate_totp(subject, step=step, at=_dt(now)):
            return _result(MfaOutcome.FAILED, subject, "not_pending")
        return _result(MfaOutcome.ENROLLED, subject, "ok")

    async def verify(self, subject: str, code: str, *, now: float) -> MfaResult:
        """Check a code of the active enrolment (lock, window, replay, failure count)."""
        refused = await self._lockout.refusal(subject, "otp", now=now)
        if refused is not None:
            return refused
        active = await self._store.get_totp(subject, pending=False)
        if active is None:
            return _result(MfaOutcome.FAILED, subject, "not_enrolled")
        step = self._match(subject, active, code, now)
        if step is None:
            return await self._lockout.failed(subject, "otp", now=now)
        if not await self._claim(subject, active, step, now):
            return _result(MfaOutcome.REPLAYED, subject, "replayed")
        await self._lockout.clear(subject)
        return passed(subject, "otp", acr=self._acr, now=now)

    async def remove(self, subject: str) -> bool:
        """Delete the subject's TOTP enrolments (pending and active)."""
        return await self._store.delete_totp(subject)

    async def enrolled(self, subject: str) -> bool:
        """Whether the subject has an active TOTP enrolment."""
        return await self._store.get_totp(subject, pending=False) is not None

    async def _claim(self, subject: str, active: TotpEnrolment, step: int, now: float) -> bool:
        """Whether ``step`` is fresh: newer than the last accepted, never seen, and now taken."""
        if active.last_step is not None and step <= active.last_step:
            return False
        ttl = _replay_ttl(self._params)
        if not await self._guard.first_use("totp", f"{subject}:{step}", ttl, now=now):
            return False
        return await self._store.advance_totp_step(subject, step)

    def _match(self, subject: str, enrolment: TotpEnrolment, code: str, now: float) -> int | None:
        secret = self._box.decrypt(PURPOSE, enrolment.ciphertext, context=secret_context(subject))
        typed = "".join(code.split())
        return totp.verify(secret, typed, now=_dt(now), params=enrolment.params)


def require_subject(subject: str) -> str:
    """``subject`` if it can name MFA records (non-empty, at most 255 characters)."""
    if not subject or len(subject) > 255:
        raise MfaStateError("mfa: subject must be 1 to 255 characters")
    return subject


def _replay_ttl(params: totp.TotpParams) -> float:
    # a step stays acceptable for (2 * WINDOW + 1) periods; keep its marker a period longer
    return float(params.period * (2 * totp.WINDOW + 2))


def _result(outcome: MfaOutcome, subject: str, reason: str) -> MfaResult:
    return MfaResult(outcome, subject, "otp", reason)


def _dt(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)
