"""Redis Cluster: hash tags keep a session's keys on one slot; the check is one round trip per node.

Runs on the private three-master cluster of this worker (``redis_cluster``).
The store contract itself runs on the cluster in test_store.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.connection import AbstractConnection

from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.model import SessionGrant
from proxy.sessions.store import digest, subject_key
from tests.proxy.sessions.conftest import T0, Stores
from tests.proxy.sessions.servers import RedisProcess


@pytest.fixture
async def cluster(
    redis_cluster: list[RedisProcess], tmp_path: Path, unique_prefix: str
) -> AsyncIterator[Stores]:
    first = redis_cluster[0]  # one startup node is enough: the client learns the rest
    urls = [f"redis://127.0.0.1:{n.port}/0" for n in redis_cluster]
    stores = Stores(
        "cluster", f"redis+cluster://127.0.0.1:{first.port}", tmp_path, unique_prefix, urls
    )
    try:
        yield stores
    finally:
        await stores.close()


def slot(node: RedisProcess, key: str) -> int:
    with node.client() as c:
        return int(c.cluster("KEYSLOT", key))


async def test_related_keys_share_a_slot(
    cluster: Stores, redis_cluster: list[RedisProcess]
) -> None:
    store = await cluster.open()
    keys = store._keys  # type: ignore[attr-defined]
    node = redis_cluster[0]
    sid, subject, d = "s" * 43, subject_key("alice"), digest("totp:alice")
    assert slot(node, keys.session(sid)) == slot(node, keys.lock(sid))
    assert slot(node, keys.user_mark(subject)) == slot(node, keys.user_sessions(subject))
    assert slot(node, keys.failures(d)) == slot(node, keys.lockout(d))
    assert slot(node, keys.session(sid)) != slot(node, keys.session("t" * 43))


async def test_sessions_spread_over_nodes_and_the_check_is_one_packet_per_node(
    cluster: Stores, redis_cluster: list[RedisProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await cluster.open()
    sessions = [(await store.create(SessionGrant(sub=f"u{i}"), now=T0)).session for i in range(12)]
    homes = set()
    for node in redis_cluster:
        with node.client() as c:
            for s in sessions:
                try:
                    if c.exists(store._keys.session(s.sid)):  # type: ignore[attr-defined]
                        homes.add(node.port)
                except redis.ResponseError:  # MOVED: that key lives elsewhere
                    pass
    assert len(homes) > 1

    for s in sessions:  # warm every node's pool first
        assert not await store.is_revoked(s.sid, s.sub, T0, now=T0)
    sent: list[int] = []
    original = AbstractConnection.send_packed_command

    async def counting(
        self: AbstractConnection, command: object, check_health: bool = True
    ) -> None:
        sent.append(int(getattr(self, "port", 0)))
        await original(self, command, check_health)  # type: ignore[arg-type]

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    for s in sessions:
        sent.clear()
        before = store.round_trips
        assert not await store.is_revoked(s.sid, s.sub, T0, now=T0 + 1)
        assert store.round_trips - before == 1
        assert 1 <= len(sent) <= len(redis_cluster)
        assert len(sent) == len(set(sent))


async def test_revoke_waits_on_the_node_that_took_the_write(cluster: Stores) -> None:
    plain = await cluster.open()
    sid = (await plain.create(SessionGrant(sub="bob"), now=T0)).session.sid
    assert await plain.revoke(sid)  # no replicas asked for: no WAIT
    waiting = await cluster.open(revoke_replicas=1)
    sid = (await waiting.create(SessionGrant(sub="bob"), now=T0)).session.sid
    with pytest.raises(SessionStoreUnavailable, match="not acknowledged"):
        await waiting.revoke(sid)  # these masters have no replica: WAIT answers 0
    with pytest.raises(SessionStoreUnavailable, match="not acknowledged"):
        await waiting.revoke_user("bob", now=T0 + 1)
    with pytest.raises(SessionStoreUnavailable, match="not acknowledged"):
        await waiting.revoke_all(now=T0 + 1)
