"""MemorySessionStore specifics: one worker only, no IO, per-session locks that go away."""

from __future__ import annotations

import asyncio

from proxy.sessions.memory_store import KeyedLocks, MemorySessionStore
from proxy.sessions.model import SessionGrant
from tests.proxy.sessions.conftest import T0


async def test_one_worker_only_and_no_round_trips() -> None:
    store = MemorySessionStore()
    assert store.supports_multiple_workers is False
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    await store.is_revoked(new.session.sid, "bob", T0, now=T0)
    await store.rotate(new.refresh_token, now=T0 + 1)
    assert store.round_trips == 0


async def test_keyed_locks_serialise_and_are_dropped() -> None:
    locks = KeyedLocks()
    inside: list[str] = []
    order: list[str] = []

    async def worker(name: str) -> None:
        async with locks.hold("sid"):
            inside.append(name)
            assert len(inside) == 1  # never two holders of one key
            await asyncio.sleep(0)
            order.append(name)
            inside.remove(name)

    await asyncio.gather(*(worker(str(i)) for i in range(5)))
    assert sorted(order) == [str(i) for i in range(5)]
    assert len(locks) == 0


async def test_creating_purges_what_expired() -> None:
    store = MemorySessionStore()
    old = await store.create(SessionGrant(sub="bob"), now=T0)
    await store.create(SessionGrant(sub="bob"), now=T0 + 100_000)
    assert old.session.sid not in store._sessions
