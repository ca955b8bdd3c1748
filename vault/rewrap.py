"""The vault as a rewrap source: moves records' ``outer`` to the primary tokenize key.

``tokengate keys rewrap`` runs every registered
:class:`~kms_client.rewrap.RewrapSource`; this one walks the store in id
order (``VaultStore.scan``) and, for each record under an older tokenize
version, opens the outer layer with exactly that version's per-record key
and seals it again under the primary (:func:`vault.crypto.rewrap`). The
inner layer, the token and the value are never seen.

Rules (those of :mod:`kms_client.rewrap`):
- Each record is swapped by compare-and-set (``replace_outer``), so a crash or
  a concurrent change loses nothing; running again finishes the job.
- Records under revoked or destroyed versions cannot be opened: counted as
  ``skipped``, never rewritten, never deleted.
- ``count`` knows the tokenize versions only: the index version of a record
  is in its token, which the vault never stores, so ``count('index', v)``
  is 0 (documented in docs/tokens.md: destroying an index version orphans
  every token that names it).

Registering (done by whoever opens the vault store for the CLI)::

    register_rewrap_source("vault", lambda manager: VaultRewrap(manager, store))
"""

from __future__ import annotations

from collections.abc import Callable

from kms_client.rewrap import BatchResult
from kms_client.rng import random_bytes
from vault.crypto import RecordRefused, rewrap
from vault.keys import PURPOSE_TOKENIZE, VaultKeys
from vault.store import StoredRecord, VaultStore

_COUNT_PAGE = 500


class VaultRewrap:
    """Vault records as a :class:`~kms_client.rewrap.RewrapSource` named ``vault``."""

    name = "vault"

    def __init__(
        self,
        keys: VaultKeys,
        store: VaultStore,
        *,
        rng: Callable[[int], bytes] = random_bytes,
    ) -> None:
        self._keys = keys
        self._store = store
        self._rng = rng
        self._cursor: bytes | None = None
        self._done = False

    async def pending(self) -> int:
        """Records not under the primary tokenize version (a full scan)."""
        primary = self._keys.primary_version(PURPOSE_TOKENIZE)
        return await self._count(lambda v: v != primary)

    async def count(self, purpose: str, version: int) -> int:
        """Records whose outer layer key ``version`` of ``purpose`` protects (tokenize only)."""
        if purpose != PURPOSE_TOKENIZE:
            return 0
        return await self._count(lambda v: v == version)

    async def rewrap_batch(self, limit: int) -> BatchResult:
        """Re-wrap the stale records of the next page of ids."""
        if self._done:
            return BatchResult(0, 0, True)
        page = await self._store.scan(after=self._cursor, limit=limit)
        if page:
            self._cursor = page[-1].id
        self._done = len(page) < limit
        primary = self._keys.primary_version(PURPOSE_TOKENIZE)
        rewrapped = skipped = 0
        for record in page:
            if record.key_version == primary:
                continue
            moved = self._moved(record)
            if moved is None:
                skipped += 1
            elif await self._store.replace_outer(record, moved):
                rewrapped += 1
        return BatchResult(rewrapped, skipped, self._done)

    def _moved(self, record: StoredRecord) -> StoredRecord | None:
        try:
            return rewrap(self._keys, record, self._rng)
        except RecordRefused:
            return None

    async def _count(self, match: Callable[[int], bool]) -> int:
        total, after = 0, None
        while True:
            page = await self._store.scan(after=after, limit=_COUNT_PAGE)
            total += sum(1 for r in page if match(r.key_version))
            if len(page) < _COUNT_PAGE:
                return total
            after = page[-1].id
