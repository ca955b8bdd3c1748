"""Rewrap: vault records move to the primary tokenize key without plaintext or tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms_client.manager import KeyManager
from kms_client.rewrap import RewrapSource, RewrapSourceFactory, run_rewrap
from tests.kms_client.support import RecordingAuditor, open_manager
from vault.api import (
    ClassSpec,
    DetokenizeItem,
    FormatKind,
    Refused,
    Revealed,
    TokenFormat,
    TokenizeItem,
)
from vault.engine import Vault
from vault.memory_store import MemoryVaultStore
from vault.rewrap import VaultRewrap
from vault.store import StoredRecord

EMAIL = ClassSpec("email")
PAN = ClassSpec("card", TokenFormat(FormatKind.PAN))


@pytest.fixture
def auditor() -> RecordingAuditor:
    return RecordingAuditor()


@pytest.fixture
async def manager(tmp_path: Path, auditor: RecordingAuditor) -> AsyncIterator[KeyManager]:
    m = await open_manager(tmp_path, auditor)
    yield m
    await m.close()


async def fill(vault: Vault, n: int) -> list[DetokenizeItem]:
    values = [TokenizeItem(f"user{i}@example.com", EMAIL, "a", "t") for i in range(n)]
    values += [TokenizeItem(f"4111 1111 1111 {i:04d}", PAN, "a", "t") for i in range(n)]
    tokens = await vault.tokenize(values)
    return [DetokenizeItem(str(t), v.spec) for t, v in zip(tokens, values, strict=True)]


def versions(store: MemoryVaultStore) -> list[int]:
    return sorted(r.key_version for r in store._records.values())


async def test_rewrap_moves_every_record_then_the_old_version_can_go(
    manager: KeyManager, auditor: RecordingAuditor
) -> None:
    store = MemoryVaultStore()
    vault = Vault(store, manager)
    reads = await fill(vault, 12)
    await manager.rotate("tokenize")
    source = VaultRewrap(manager, store)
    assert await source.pending() == 24
    assert await source.count("tokenize", 1) == 24
    assert await source.count("tokenize", 2) == 0
    assert await source.count("index", 1) == 0  # not knowable without tokens (documented)
    seen: list[int] = []
    results = await run_rewrap(
        manager, [source], batch_size=5, on_batch=lambda _n, moved, _t: seen.append(moved)
    )
    assert results["vault"].rewrapped == 24
    assert results["vault"].done
    assert sum(seen) == 24
    assert versions(store) == [2] * 24
    assert await VaultRewrap(manager, store).pending() == 0
    assert auditor.find("keyring.rewrap", source="vault", result="ok")[0]["rewrapped"] == 24
    await manager.destroy("tokenize", 1)  # nothing depends on v1 any more
    out = await vault.detokenize(reads)
    assert all(isinstance(r, Revealed) for r in out)


async def test_the_deny_twin_destroying_before_rewrap_shreds(manager: KeyManager) -> None:
    store = MemoryVaultStore()
    vault = Vault(store, manager)
    reads = await fill(vault, 2)
    await manager.rotate("tokenize")
    await manager.destroy("tokenize", 1)
    out = await vault.detokenize(reads)
    assert all(isinstance(r, Refused) and r.reason == "refused" for r in out)


async def test_records_under_revoked_versions_are_skipped_not_deleted(manager: KeyManager) -> None:
    store = MemoryVaultStore()
    vault = Vault(store, manager)
    await fill(vault, 3)
    await manager.rotate("tokenize")
    (fresh,) = await vault.tokenize([TokenizeItem("new", EMAIL, "a", "t")])
    await manager.rotate("tokenize")
    await manager.revoke("tokenize", 1)
    results = await run_rewrap(manager, [VaultRewrap(manager, store)], batch_size=100)
    assert (results["vault"].rewrapped, results["vault"].skipped) == (1, 6)
    assert not results["vault"].done  # six records still wait for v1 (un-revoke or destroy)
    assert versions(store) == [1] * 6 + [3]
    (r,) = await vault.detokenize([DetokenizeItem(str(fresh), EMAIL)])
    assert isinstance(r, Revealed)


async def test_a_record_changed_meanwhile_is_left_alone(manager: KeyManager) -> None:
    class Racing(MemoryVaultStore):
        """Another replica deletes every record between our scan and our swap."""

        async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
            page = await super().scan(after=after, limit=limit)
            await self.delete_many([r.id for r in page])
            return page

    store = Racing()
    await fill(Vault(store, manager), 2)
    await manager.rotate("tokenize")
    batch = await VaultRewrap(manager, store).rewrap_batch(10)
    assert (batch.rewrapped, batch.skipped, batch.done) == (0, 0, True)
    assert len(store) == 0  # nothing resurrected


async def test_a_tampered_record_is_skipped(manager: KeyManager) -> None:
    store = MemoryVaultStore()
    await fill(Vault(store, manager), 1)  # two records
    await manager.rotate("tokenize")
    rid, record = next(iter(store._records.items()))
    flipped = record.outer[:-1] + bytes([record.outer[-1] ^ 1])
    store._records[rid] = StoredRecord(rid, 1, flipped, record.meta, record.expires)
    batch = await VaultRewrap(manager, store).rewrap_batch(10)
    assert (batch.rewrapped, batch.skipped) == (1, 1)
    assert store._records[rid].outer == flipped  # left as it was, not deleted


async def test_batches_resume_where_they_stopped(manager: KeyManager) -> None:
    store = MemoryVaultStore()
    await fill(Vault(store, manager), 5)  # 10 records
    await manager.rotate("tokenize")
    source = VaultRewrap(manager, store)
    moved = []
    while True:
        batch = await source.rewrap_batch(4)
        moved.append(batch.rewrapped)
        if batch.done:
            break
    assert moved == [4, 4, 2]
    assert (await source.rewrap_batch(4)).rewrapped == 0


async def test_it_is_a_rewrap_source_and_registers_by_factory(manager: KeyManager) -> None:
    store = MemoryVaultStore()
    factory: RewrapSourceFactory = lambda m: VaultRewrap(m, store)  # noqa: E731
    source: RewrapSource = factory(manager)
    assert source.name == "vault"
