"""Shared helpers for the vault tests: fixed keys and RNG, a clock, store wrappers that count or fail."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms_client.keyring import KeyKind, Keyring, KeyState, KeyVersion, PurposeRing
from kms_client.keyview import KeyView
from vault.errors import VaultUnavailable
from vault.memory_store import MemoryVaultStore
from vault.store import Durability, StoredRecord

T0 = 1_900_000_000.0  # the clock's start (2030-03-17)


def fixed_material(purpose: str, version: int) -> bytes:
    """The fixed 32-byte key of (purpose, version) used by the known-answer vectors."""
    return hashlib.sha256(f"tokengate/vault-vectors/{purpose}/{version}".encode()).digest()


def fixed_keys(
    *, tokenize: int = 1, index: int = 1, states: dict[tuple[str, int], KeyState] | None = None
) -> KeyView:
    """A real KeyView over a keyring with fixed material: ``tokenize``/``index`` versions 1..n.

    The newest version of each purpose is the primary; ``states`` overrides older ones.
    """
    when = datetime(2030, 1, 1, tzinfo=UTC)
    states = states or {}

    def ring(purpose: str, kind: KeyKind, count: int) -> PurposeRing:
        keys = []
        for v in range(1, count + 1):
            state = states.get((purpose, v), KeyState.ACTIVE)
            material = None if state is KeyState.DESTROYED else fixed_material(purpose, v)
            keys.append(KeyVersion(v, state, when, when, material))
        return PurposeRing(purpose, kind, count, tuple(keys))

    keyring = Keyring(
        {
            "tokenize": ring("tokenize", KeyKind.AEAD, tokenize),
            "index": ring("index", KeyKind.PRF, index),
            "convergent": ring("convergent", KeyKind.PRF, 1),
        }
    )
    return KeyView(keyring, known_usage={})


class StreamRng:
    """Deterministic bytes: SHA-256(seed | counter) blocks. For vectors and collision tests."""

    def __init__(self, seed: bytes = b"tokengate/vault-vectors") -> None:
        self._seed = seed
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        return out[:n]


class Clock:
    """Unix seconds that move only when told to."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class CountingStore(MemoryVaultStore):
    """The real in-memory store, counting the calls the engine makes."""

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        super().__init__(now=now)
        self.calls: list[str] = []
        self.sizes: list[int] = []

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        self.calls.append("put_new")
        self.sizes.append(len(records))
        return await super().put_new(records)

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        self.calls.append("get_many")
        self.sizes.append(len(ids))
        return await super().get_many(ids)

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        self.calls.append("delete_many")
        self.sizes.append(len(ids))
        return await super().delete_many(ids)


class DownStore(MemoryVaultStore):
    """A store whose backend is unreachable: every data call raises VaultUnavailable."""

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        raise VaultUnavailable("vault: memory store is down (test)")

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        raise VaultUnavailable("vault: memory store is down (test)")

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        raise VaultUnavailable("vault: memory store is down (test)")

    async def durability(self) -> Durability:
        raise VaultUnavailable("vault: memory store is down (test)")


def design_outer_body(tokenize_key: bytes, record: StoredRecord) -> bytes:
    """The outer plaintext, computed straight from DESIGN.md's formulas (not via vault.crypto)."""
    outer_key = HKDF(
        algorithm=SHA256(), length=32, salt=record.id, info=b"tokengate/outer/v1"
    ).derive(tokenize_key)
    aad = record.id + record.key_version.to_bytes(4, "big") + record.meta
    return AESGCM(outer_key).decrypt(record.outer[:12], record.outer[12:], aad)


def design_inner_value(secret: bytes, field_class: str, record_id: bytes, inner: bytes) -> str:
    """The value inside ``inner``, straight from DESIGN.md's formulas."""
    key = HKDF(
        algorithm=SHA256(), length=32, salt=None, info=b"tokengate/inner/v1" + field_class.encode()
    ).derive(secret)
    return AESGCM(key).decrypt(inner[:12], inner[12:], record_id).decode()
