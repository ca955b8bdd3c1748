"""An in-memory VaultStore: unit tests and single-process development only.

It keeps the rules of :mod:`vault.store` except durability (records die with
the process, and :meth:`MemoryVaultStore.durability` says so, so production
mode refuses it). Every method runs without awaiting anything, so each call is
atomic on the event loop. Expired records are invisible: never returned,
never counted, and an id whose record expired counts as absent for
``put_new`` (so a deterministic token is re-created rather than handed out
without a live record).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from vault.store import Durability, StoredRecord


class MemoryVaultStore:
    """Vault records in a dict, by id; ``now`` gives unix seconds for expiry."""

    name = "memory"

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self._records: dict[bytes, StoredRecord] = {}
        self._now = now

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        """Insert records whose id is absent (or expired); True per inserted record."""
        out = []
        for record in records:
            fresh = self._live(record.id) is None
            if fresh:
                self._records[record.id] = record
            out.append(fresh)
        return out

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        """The live records among ``ids``."""
        return {i: r for i in ids if (r := self._live(i)) is not None}

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        """Delete records; the number of live ones that existed."""
        existed = 0
        for i in set(ids):
            existed += self._live(i) is not None
            self._records.pop(i, None)
        return existed

    async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` live records with id > ``after``, in id order."""
        ids = sorted(i for i in self._records if after is None or i > after)
        out: list[StoredRecord] = []
        for i in ids:
            if len(out) >= limit:
                break
            if (r := self._live(i)) is not None:
                out.append(r)
        return out

    async def replace_outer(self, old: StoredRecord, new: StoredRecord) -> bool:
        """Swap key_version and outer iff the live record still equals ``old``."""
        if new.id != old.id or new.meta != old.meta or new.expires != old.expires:
            raise ValueError("vault: replace_outer may change key_version and outer only")
        if self._live(old.id) != old:
            return False
        self._records[old.id] = new
        return True

    async def durability(self) -> Durability:
        """Never durable: records live in this process only."""
        return Durability(False, "memory: records live in this process only")

    async def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        """Records held, expired ones included (tests use it to see purges)."""
        return len(self._records)

    def _live(self, rid: bytes) -> StoredRecord | None:
        record = self._records.get(rid)
        if record is None:
            return None
        if record.expires is not None and record.expires <= self._now():
            del self._records[rid]
            return None
        return record
