"""What the MFA service needs from the keyring and the session store: small Protocols.

The real :class:`kms_client.manager.KeyManager` satisfies :class:`MfaKeys`
(``encrypt``/``decrypt`` under purpose ``mfa-secrets``, ``derive_key`` for the
recovery-code hash key); the session stores of :mod:`proxy.sessions` satisfy
:class:`AttemptGuard` (replay guard and failure counters). Nothing here
imports either package, so the MFA code depends on their shape only.
"""

from __future__ import annotations

from typing import Protocol


class SecretBox(Protocol):
    """Authenticated encryption under a keyring purpose, ``context`` bound as AAD."""

    def encrypt(self, purpose: str, plaintext: bytes, *, context: bytes) -> bytes:
        """A ciphertext naming its key version."""
        ...

    def decrypt(self, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
        """The plaintext; raises (one opaque error) on any mismatch."""
        ...


class DerivedKeyLike(Protocol):
    """Key material derived from a keyring key, and that key's version."""

    @property
    def version(self) -> int:
        """The keyring version the material came from."""
        ...

    @property
    def key(self) -> bytes:
        """The derived bytes (never logged)."""
        ...


class KeyDeriver(Protocol):
    """HKDF from a keyring key of a purpose, at a chosen or the primary version."""

    def derive_key(
        self,
        purpose: str,
        *,
        salt: bytes,
        info: bytes,
        version: int | None = None,
        length: int = 32,
    ) -> DerivedKeyLike:
        """HKDF-SHA256 output; raises if that version is not usable."""
        ...


class MfaKeys(SecretBox, KeyDeriver, Protocol):
    """Both: what :class:`~proxy.mfa.service.MfaService` takes from the keyring."""


class AttemptGuard(Protocol):
    """Replay guard and failure counters shared by every worker and replica.

    Times are POSIX seconds; ``now`` lets tests drive the clock.
    """

    async def first_use(
        self, namespace: str, value: str, ttl: float, *, now: float | None = None
    ) -> bool:
        """True the first time ``value`` is seen in ``namespace`` within ``ttl`` seconds."""
        ...

    async def incr_failures(
        self,
        key: str,
        window: float,
        *,
        lock_after: int | None = None,
        lock_for: float = 0.0,
        now: float | None = None,
    ) -> int:
        """Count a failure in a fixed window; at ``lock_after`` failures lock ``key``."""
        ...

    async def reset(self, key: str, *, unlock: bool = False) -> None:
        """Clear the failure count of ``key`` (and its lock with ``unlock``)."""
        ...

    async def locked_until(self, key: str, *, now: float | None = None) -> float | None:
        """When the lock on ``key`` ends, or None if it is not locked at ``now``."""
        ...
