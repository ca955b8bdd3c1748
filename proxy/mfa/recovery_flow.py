"""Recovery codes for one subject: issue (shown once), verify-and-consume.

Rules:
- Issuing replaces the whole set; the plaintext codes are returned once and
  only their digests are stored, keyed by an HMAC key derived from the
  keyring (purpose ``mfa-secrets``, HKDF info naming this use) at the primary
  version, which the set records. After a rotation old sets keep working
  while that version is usable; destroying it crypto-shreds them.
- Verifying is subject to the same lock and failure count as TOTP codes. A
  match is consumed by the store's atomic delete; if a concurrent request
  consumed it first, the attempt is ``replayed``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from proxy.auth import recovery_codes
from proxy.mfa.lockout import Lockout
from proxy.mfa.outcome import MfaOutcome, MfaResult, passed
from proxy.mfa.ports import DerivedKeyLike, KeyDeriver
from proxy.mfa.store import MfaRecordStore

PURPOSE = "mfa-secrets"


class RecoveryFlow:
    """Issue, verify and count recovery codes."""

    def __init__(
        self,
        *,
        store: MfaRecordStore,
        keys: KeyDeriver,
        lockout: Lockout,
        random_bytes: Callable[[int], bytes],
        count: int,
        acr: str,
    ) -> None:
        self._store = store
        self._keys = keys
        self._lockout = lockout
        self._random = random_bytes
        self._count = count
        self._acr = acr

    async def issue(self, subject: str, *, now: float) -> list[str]:
        """A fresh set of codes (display form); the previous set stops working."""
        codes = recovery_codes.generate(self._random, count=self._count)
        derived = self._key(None)
        digests = [recovery_codes.digest(derived.key, subject, c) for c in codes]
        await self._store.replace_recovery_codes(
            subject,
            key_version=derived.version,
            digests=digests,
            at=datetime.fromtimestamp(now, UTC),
        )
        return [recovery_codes.display(c) for c in codes]

    async def remaining(self, subject: str) -> int:
        """How many unused codes the subject has (0 if none were ever issued)."""
        codes = await self._store.recovery_codes(subject)
        return 0 if codes is None else len(codes.digests)

    async def verify(self, subject: str, code: str, *, now: float) -> MfaResult:
        """Check and consume one code (lock first, then a constant-time match)."""
        refused = await self._lockout.refusal(subject, "recovery", now=now)
        if refused is not None:
            return refused
        stored = await self._store.recovery_codes(subject)
        if stored is None or not stored.digests:
            return MfaResult(MfaOutcome.FAILED, subject, "recovery", "not_enrolled")
        canonical = recovery_codes.normalize(code)
        match: bytes | None = None
        if canonical is not None:
            key = self._key(stored.key_version).key
            candidate = recovery_codes.digest(key, subject, canonical)
            match = recovery_codes.find(stored.digests, candidate)
        if match is None:
            return await self._lockout.failed(subject, "recovery", now=now)
        if not await self._store.consume_recovery_code(subject, match):
            return MfaResult(MfaOutcome.REPLAYED, subject, "recovery", "replayed")
        await self._lockout.clear(subject)
        left = len(stored.digests) - 1
        return passed(subject, "recovery", acr=self._acr, now=now, recovery_codes_left=left)

    async def remove(self, subject: str) -> bool:
        """Delete the subject's codes."""
        return await self._store.delete_recovery_codes(subject)

    def _key(self, version: int | None) -> DerivedKeyLike:
        return self._keys.derive_key(
            PURPOSE, salt=b"", info=recovery_codes.KEY_INFO, version=version
        )
