"""The storage boundary of the vault: what every backend (SQLite, Redis, PostgreSQL, S3) does.

Stores hold opaque records and know nothing of tokens, keys or plaintext: a
record is an id (HMAC of the token, so the store cannot map ids to tokens),
the tokenize key version, the outer ciphertext and the canonical metadata.

Rules every store keeps:
- ``put_new`` returns only after the records are durably committed (the
  "nothing lost" principle: a token leaves the gateway only after that). It
  never overwrites: an id that already exists is reported, not replaced, so
  shape-preserving formats can retry on a collision and deterministic tokens
  share one record.
- One round trip per call where the engine can batch (SQLite, Redis,
  PostgreSQL); bounded concurrency where it cannot (S3).
- Records past ``expires`` are never returned (and may be purged lazily).
- Any failure to reach or use the backend raises
  :class:`~vault.errors.VaultUnavailable`; nothing is retried silently in a
  way that could duplicate or lose a record.
- ``replace_outer`` is compare-and-set on (key_version, outer): the rewrap
  moves a record to a new key version only if nobody changed it meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One vault record as stored: nothing in it is secret without the keys and the token."""

    id: bytes  # 32-byte HMAC-SHA256(K_index[t], token)
    key_version: int  # version v of the tokenize key that wraps ``outer``
    outer: bytes = field(repr=False)  # nonce || AES-256-GCM ciphertext and tag
    meta: bytes = field(repr=False)  # canonical metadata (vault.record), bound in the outer AAD
    expires: int | None = None  # unix seconds; None = persistent (also inside ``meta``)


@dataclass(frozen=True, slots=True)
class Durability:
    """What a store says about surviving its own restart (checked at start-up)."""

    durable: bool
    detail: str  # e.g. "redis: appendonly is off"; never a secret


class VaultStore(Protocol):
    """A backend that stores vault records by id."""

    @property
    def name(self) -> str:
        """The URI scheme, for logs and metrics (``sqlite``, ``redis``, ...)."""
        ...

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        """Insert records whose id is absent; True per inserted record, False where the id exists.

        Durable when it returns; same length and order as ``records``.
        """
        ...

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        """The live records among ``ids`` (missing and expired ones are absent)."""
        ...

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        """Delete records (per-value erasure); the number that existed."""
        ...

    async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` live records with id > ``after`` in id order (for rewrap)."""
        ...

    async def replace_outer(self, old: StoredRecord, new: StoredRecord) -> bool:
        """Swap key_version/outer iff the stored record still equals ``old``; True if swapped."""
        ...

    async def durability(self) -> Durability:
        """Whether committed records survive a restart of the backend."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...
