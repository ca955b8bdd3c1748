"""Redis Sentinel: revokes wait for a replica (WAIT), and fail closed when none acknowledges.

A private master + replica + Sentinel per test (the test stops the replica).
The store is given only the Sentinel's address and finds the master itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.sessions.errors import RefreshReuseDetected, SessionStoreUnavailable
from proxy.sessions.model import SessionGrant
from proxy.sessions.redis_store import RedisSessionStore
from proxy.sessions.redis_uri import parse_redis_uri
from tests.conftest import free_port
from tests.proxy.sessions.conftest import T0, SentinelGroup, settings
from tests.proxy.sessions.servers import Group, info, start_sentinel_group, wait_until


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    servers = Group()
    try:
        yield SentinelGroup(*start_sentinel_group(tmp_path, servers))
    finally:
        servers.stop()


async def test_revoke_waits_for_the_replica_and_fails_closed_without_it(
    group: SentinelGroup, unique_prefix: str
) -> None:
    store = RedisSessionStore(parse_redis_uri(group.uri), settings(unique_prefix))
    await store.open()
    try:
        assert store.revoke_replicas == 1  # Sentinel: replicas exist, so revokes wait
        grant = SessionGrant(sub="alice")
        first, second, third = [await store.create(grant, now=T0) for _ in range(3)]

        assert await store.revoke(first.session.sid)
        with group.replica.client() as replica:  # acknowledged: already on the replica
            assert not replica.exists(store._keys.session(first.session.sid))
            assert replica.exists(store._keys.session(second.session.sid))

        group.replica.stop()
        wait_until(
            lambda: info(group.master, "replication").get("connected_slaves") == 0,
            what="master noticing the replica is gone",
        )
        assert (await store.rotate(third.refresh_token, now=T0 + 1)).outcome == "rotated"
        with pytest.raises(RefreshReuseDetected) as reuse:  # refused, and flagged unconfirmed
            await store.rotate(third.refresh_token, now=T0 + 100)
        assert reuse.value.revoked is False
        assert isinstance(reuse.value.__cause__, SessionStoreUnavailable)
        for revoke in (
            store.revoke(second.session.sid),
            store.revoke_user("bob", now=T0 + 1),
            store.revoke_all(now=T0 + 1),
        ):
            with pytest.raises(SessionStoreUnavailable, match="not acknowledged") as caught:
                await revoke
            assert caught.value.status == 503
        # Reads need no replica; the unacknowledged revoke is in force on the master.
        assert await store.is_revoked(second.session.sid, "alice", T0, now=T0 + 3)
    finally:
        await store.close()


async def test_no_sentinel_fails_closed(unique_prefix: str) -> None:
    uri = f"redis+sentinel://127.0.0.1:{free_port()}/tgmaster"
    store = RedisSessionStore(parse_redis_uri(uri), settings(unique_prefix, timeout=0.3))
    with pytest.raises(SessionStoreUnavailable):
        await store.open()
    await store.close()
