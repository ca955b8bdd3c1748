"""The in-memory store keeps the VaultStore contract (minus durability, which it disclaims)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.vault.conftest import Clock
from tests.vault.store_contract import CHECKS, rec
from vault.memory_store import MemoryVaultStore
from vault.store import VaultStore

Check = Callable[[VaultStore, Clock], Awaitable[None]]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
async def test_contract(clock: Clock, check: Check) -> None:
    await check(MemoryVaultStore(now=clock), clock)


async def test_it_says_it_is_not_durable() -> None:
    store = MemoryVaultStore()
    assert store.name == "memory"
    d = await store.durability()
    assert not d.durable
    assert "memory" in d.detail
    await store.close()
    await store.close()  # idempotent


async def test_expired_records_are_purged_when_seen(clock: Clock) -> None:
    store = MemoryVaultStore(now=clock)
    now = int(clock())
    await store.put_new([rec(1, expires=now + 5), rec(2)])
    assert len(store) == 2
    clock.t = now + 5
    assert set(await store.get_many([rec(1).id, rec(2).id])) == {rec(2).id}
    assert len(store) == 1


async def test_replace_outer_may_change_only_version_and_outer() -> None:
    store = MemoryVaultStore()
    old = rec(1)
    await store.put_new([old])
    with pytest.raises(ValueError, match="key_version and outer only"):
        await store.replace_outer(old, rec(2))
    assert (await store.get_many([old.id]))[old.id] == old
