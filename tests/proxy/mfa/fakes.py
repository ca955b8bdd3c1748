"""Test doubles for the MFA service's ports: an in-memory attempt guard, an AES-GCM box, a clock.

The guard follows the session store's contract (fixed failure windows, a lock
set at ``lock_after`` failures, ``reset`` keeping the lock unless asked);
tests also run once against the real session store on a SQLite file and the
real KeyManager, so these doubles cannot drift unnoticed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

T0 = 1_900_000_005.0  # a POSIX time 5 s into a 30 s TOTP step


class Clock:
    """A clock in POSIX seconds that moves only when told to."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryGuard:
    """In-memory AttemptGuard with the session store's semantics."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.seen: dict[tuple[str, str], float] = {}
        self.failures: dict[str, tuple[int, float]] = {}  # key -> (count, window end)
        self.locks: dict[str, float] = {}

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    async def first_use(
        self, namespace: str, value: str, ttl: float, *, now: float | None = None
    ) -> bool:
        t = self._now(now)
        expiry = self.seen.get((namespace, value))
        if expiry is not None and expiry > t:
            return False
        self.seen[(namespace, value)] = t + ttl
        return True

    async def incr_failures(
        self,
        key: str,
        window: float,
        *,
        lock_after: int | None = None,
        lock_for: float = 0.0,
        now: float | None = None,
    ) -> int:
        t = self._now(now)
        count, end = self.failures.get(key, (0, t + window))
        if end <= t:
            count, end = 0, t + window
        count += 1
        self.failures[key] = (count, end)
        if lock_after is not None and count >= lock_after and lock_for > 0:
            self.locks[key] = max(self.locks.get(key, 0.0), t + lock_for)
        return count

    async def reset(self, key: str, *, unlock: bool = False) -> None:
        self.failures.pop(key, None)
        if unlock:
            self.locks.pop(key, None)

    async def locked_until(self, key: str, *, now: float | None = None) -> float | None:
        until = self.locks.get(key)
        return until if until is not None and until > self._now(now) else None


@dataclass(frozen=True)
class Derived:
    version: int
    key: bytes = field(repr=False)


class AesGcmKeys:
    """MfaKeys double: AES-256-GCM with a version byte prefix, HKDF for derived keys."""

    def __init__(self) -> None:
        self.versions: dict[int, bytes] = {1: os.urandom(32)}
        self.primary = 1
        self.encryptions: list[tuple[str, bytes]] = []

    def rotate(self) -> None:
        self.primary += 1
        self.versions[self.primary] = os.urandom(32)

    def encrypt(self, purpose: str, plaintext: bytes, *, context: bytes) -> bytes:
        self.encryptions.append((purpose, context))
        nonce = os.urandom(12)
        aad = purpose.encode() + b"|" + context
        body = AESGCM(self.versions[self.primary]).encrypt(nonce, plaintext, aad)
        return bytes([self.primary]) + nonce + body

    def decrypt(self, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
        key = self.versions.get(ciphertext[0])
        if key is None:
            raise ValueError("unknown key version")
        aad = purpose.encode() + b"|" + context
        try:
            return AESGCM(key).decrypt(ciphertext[1:13], ciphertext[13:], aad)
        except InvalidTag as e:
            raise ValueError("decryption failed") from e

    def derive_key(
        self,
        purpose: str,
        *,
        salt: bytes,
        info: bytes,
        version: int | None = None,
        length: int = 32,
    ) -> Derived:
        v = self.primary if version is None else version
        if v not in self.versions:
            raise ValueError("unknown key version")
        hkdf = HKDF(
            algorithm=SHA256(), length=length, salt=salt, info=purpose.encode() + b"|" + info
        )
        return Derived(v, hkdf.derive(self.versions[v]))
