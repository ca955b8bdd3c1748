"""Rewrap: moving stored ciphertexts to the primary key versions, in resumable batches.

A rewrap source is anything that stores keyring ciphertexts: the keyring's
own wrapped secrets and KWKs here, vault records later. Sources register a
factory by name (:func:`register_rewrap_source`; a duplicate name is refused)
and ``tokengate keys rewrap`` runs them all.

Rules every source keeps:
- Each item is rewritten atomically and only if it did not change meanwhile
  (compare-and-set), so a crash or a kill at any point loses nothing: an item
  is either still under its old version (which stays decrypt-only) or already
  under the new one, and running the rewrap again finishes the job.
- Items under revoked or destroyed versions cannot be opened: they are
  counted as ``skipped``, never rewritten, never deleted.
- ``count(purpose, version)`` says how many items a version still protects,
  which the CLI shows before a destroy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from operator import eq, ne
from types import MappingProxyType
from typing import Protocol

from kms_client import aead
from kms_client.audit_port import AuditValue
from kms_client.errors import DecryptionError, KmsError
from kms_client.keyring import KeyKind
from kms_client.manager import KeyManager
from kms_client.secrets import secret_context


@dataclass(frozen=True)
class BatchResult:
    """What one batch did; ``done`` when the source has nothing left to look at."""

    rewrapped: int
    skipped: int
    done: bool


class RewrapSource(Protocol):
    """Stored ciphertexts that can be moved to the primary key versions."""

    @property
    def name(self) -> str:
        """Short name for the CLI and the audit log (``secrets``, ``vault``)."""
        ...

    async def pending(self) -> int:
        """Items not yet under their purpose's primary version."""
        ...

    async def count(self, purpose: str, version: int) -> int:
        """Items still under key ``version`` of ``purpose``."""
        ...

    async def rewrap_batch(self, limit: int) -> BatchResult:
        """Move up to ``limit`` items on from where the last batch stopped."""
        ...


type RewrapSourceFactory = Callable[[KeyManager], RewrapSource]

_REGISTRY: dict[str, RewrapSourceFactory] = {}


def register_rewrap_source(name: str, factory: RewrapSourceFactory) -> None:
    """Add a source; a duplicate name stops start-up."""
    if name in _REGISTRY:
        raise ValueError(f"kms: rewrap source '{name}' registered twice")
    _REGISTRY[name] = factory


def rewrap_sources() -> Mapping[str, RewrapSourceFactory]:
    """Every registered source factory by name, read-only."""
    return MappingProxyType(_REGISTRY)


class KeyringRewrap:
    """The keyring itself: destroys KWKs that a destroy or KWK rotation retired."""

    name = "keyring"

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager

    async def pending(self) -> int:
        """Retired KWKs not yet destroyed in the root."""
        return len(self._manager.keyring().retired_kwks)

    async def count(self, purpose: str, version: int) -> int:
        """The keyring holds no data ciphertexts."""
        return 0

    async def rewrap_batch(self, limit: int) -> BatchResult:
        """Destroy every retired KWK (one short step)."""
        done = await self._manager.finish_retired_kwks()
        return BatchResult(done, 0, True)


class SecretsRewrap:
    """Wrapped secrets of every aead purpose, scanned through the store."""

    name = "secrets"

    def __init__(self, manager: KeyManager) -> None:
        self._manager = manager
        self._purposes = [
            n for n, r in manager.keyring().purposes.items() if r.kind is KeyKind.AEAD
        ]
        self._at = 0
        self._cursor: str | None = None

    async def pending(self) -> int:
        """Secrets under any version but their purpose's primary."""
        total = 0
        for purpose in self._purposes:
            primary = self._manager.primary_version(purpose)
            total += await self._count(purpose, partial(ne, primary))
        return total

    async def count(self, purpose: str, version: int) -> int:
        """Secrets of ``purpose`` under ``version``."""
        if purpose not in self._purposes:
            return 0
        return await self._count(purpose, partial(eq, version))

    async def rewrap_batch(self, limit: int) -> BatchResult:
        """Rewrap the stale secrets in the next page of the scan."""
        if self._at >= len(self._purposes):
            return BatchResult(0, 0, True)
        purpose = self._purposes[self._at]
        store = self._manager.store
        items, self._cursor = await store.secret_scan(purpose, self._cursor, limit)
        if self._cursor is None:
            self._at += 1
        primary = self._manager.primary_version(purpose)
        rewrapped = skipped = 0
        for name, old in items:
            if _version(old) == primary:
                continue
            context = secret_context(name)
            try:
                plain = self._manager.decrypt(purpose, old, context=context)
            except DecryptionError:
                skipped += 1
                continue
            new = self._manager.encrypt(purpose, plain, context=context)
            if await store.secret_replace(purpose, name, old, new):
                rewrapped += 1
        return BatchResult(rewrapped, skipped, self._at >= len(self._purposes))

    async def _count(self, purpose: str, match: Callable[[int], bool]) -> int:
        total, cursor = 0, None
        while True:
            items, cursor = await self._manager.store.secret_scan(purpose, cursor, 500)
            total += sum(1 for _, value in items if match(_version(value)))
            if cursor is None:
                return total


def _version(ciphertext: bytes) -> int:
    try:
        return aead.version_of(ciphertext)
    except DecryptionError:
        return 0


async def run_rewrap(
    manager: KeyManager,
    sources: list[RewrapSource],
    *,
    batch_size: int,
    on_batch: Callable[[str, int, int], None] | None = None,
    actor: str | None = None,
) -> dict[str, BatchResult]:
    """Run every source to the end; audited per source; ``on_batch(name, moved, total)``."""
    results = {}
    for source in sources:
        remaining = await source.pending()
        fields: dict[str, AuditValue] = {"source": source.name, "actor": actor}
        await manager.audit("keyring.rewrap", **fields, remaining=remaining, result="requested")
        rewrapped = skipped = 0
        try:
            while True:
                batch = await source.rewrap_batch(batch_size)
                rewrapped += batch.rewrapped
                skipped += batch.skipped
                if on_batch is not None:
                    on_batch(source.name, batch.rewrapped + batch.skipped, remaining)
                if batch.done:
                    break
            left = await source.pending()
        except KmsError as e:
            await manager.audit(
                "keyring.rewrap",
                **fields,
                rewrapped=rewrapped,
                result="failed",
                reason=str(e)[:256],
            )
            raise
        await manager.audit(
            "keyring.rewrap", **fields, rewrapped=rewrapped, remaining=left, result="ok"
        )
        results[source.name] = BatchResult(rewrapped, skipped, left == 0)
    return results


register_rewrap_source(KeyringRewrap.name, KeyringRewrap)
register_rewrap_source(SecretsRewrap.name, SecretsRewrap)
