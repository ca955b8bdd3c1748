"""RedisSessionStore specifics: wire-level round trips, key hygiene, TTLs, failing closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.asyncio.connection import AbstractConnection

from proxy.sessions.errors import RefreshRejected, SessionStoreUnavailable
from proxy.sessions.model import SessionGrant
from proxy.sessions.redis_store import RedisSessionStore
from proxy.sessions.redis_uri import parse_redis_uri
from proxy.sessions.store import SessionStore
from tests.conftest import free_port
from tests.proxy.sessions.conftest import T0, settings
from tests.proxy.sessions.servers import Group, start

Wire = list[tuple[str, int]]


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Every packet of commands any redis-py connection writes, as (host, port)."""
    sent: Wire = []
    original = AbstractConnection.send_packed_command

    async def counting(
        self: AbstractConnection, command: object, check_health: bool = True
    ) -> None:
        sent.append((getattr(self, "host", "?"), int(getattr(self, "port", 0))))
        await original(self, command, check_health)  # type: ignore[arg-type]

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.fixture
async def shared(redis_url: str, unique_prefix: str) -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore(parse_redis_uri(redis_url), settings(unique_prefix))
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        with redis.Redis.from_url(redis_url) as c:
            for key in list(c.scan_iter(match=f"{unique_prefix}:*")):
                c.delete(key)


async def test_is_revoked_sends_one_packet(shared: RedisSessionStore, wire: Wire) -> None:
    sid = (await shared.create(SessionGrant(sub="bob"), now=T0)).session.sid
    await shared.is_revoked(sid, "bob", T0, now=T0)  # warm the pool: no connection handshake
    for i in range(5):
        before_packets, before_count = len(wire), shared.round_trips
        assert not await shared.is_revoked(sid, "bob", T0, now=T0 + i)
        assert len(wire) - before_packets == 1
        assert shared.round_trips - before_count == 1


async def test_concurrent_checks_share_one_packet_and_keep_their_own_answers(
    shared: RedisSessionStore, wire: Wire
) -> None:
    """The checks of one loop turn go out as ONE command; each reads its own session."""
    live = [(await shared.create(SessionGrant(sub=f"u{i}"), now=T0)).session for i in range(4)]
    gone = (await shared.create(SessionGrant(sub="gone"), now=T0)).session
    marked = (await shared.create(SessionGrant(sub="marked"), now=T0)).session
    await shared.revoke(gone.sid)
    await shared.revoke_user("marked", now=T0 + 0.5)  # the user's mark
    await shared.is_revoked(live[0].sid, "u0", T0, now=T0)  # warm the pool
    before_packets, before_count = len(wire), shared.round_trips
    answers = await asyncio.gather(
        *(shared.is_revoked(s.sid, s.sub, T0, now=T0 + 1) for s in live),
        shared.is_revoked(gone.sid, "gone", T0, now=T0 + 1),
        shared.is_revoked(marked.sid, "marked", T0, now=T0 + 1),
        shared.is_revoked(live[1].sid, "someone-else", T0, now=T0 + 1),  # sub mismatch
    )
    assert answers == [False, False, False, False, True, True, True]
    assert len(wire) - before_packets == 1
    assert shared.round_trips - before_count == 1
    await shared.revoke(live[3].sid)  # returns: the very next check sees it
    assert await shared.is_revoked(live[3].sid, "u3", T0, now=T0 + 2)


@pytest.fixture
async def piped(redis_url: str, unique_prefix: str) -> AsyncIterator[RedisSessionStore]:
    """A second store on the same keys that takes the Cluster path (one pipeline)."""
    store = RedisSessionStore(parse_redis_uri(redis_url), settings(unique_prefix))
    await store.open()
    store._io.clustered = True
    try:
        yield store
    finally:
        await store.close()


async def test_the_one_eval_check_and_the_cluster_pipeline_agree(
    shared: RedisSessionStore, piped: RedisSessionStore
) -> None:
    assert not shared._io.clustered
    subs = ["bob", "a\nb\nc\nd\ne\nf\ng\nh", "ünï cödé"]  # the sub is last in the reply
    sids = [(await shared.create(SessionGrant(sub=sub), now=T0)).session.sid for sub in subs]

    async def both(sid: str, sub: str, now: float) -> bool:
        answers = {await s.is_revoked(sid, sub, T0, now=now) for s in (shared, piped)}
        assert len(answers) == 1
        return answers.pop()

    for sid, sub in zip(sids, subs, strict=True):
        assert not await both(sid, sub, T0 + 1)  # live
        assert await both(sid, sub + "x", T0 + 1)  # another subject's token
    assert await both("s" * 43, "bob", T0 + 1)  # unknown session
    await shared.revoke_user(subs[1], now=T0 + 2)
    assert await both(sids[1], subs[1], T0 + 3)  # the user's mark
    assert not await both(sids[0], subs[0], T0 + 3)
    await shared.revoke_all(now=T0 + 4)
    assert await both(sids[0], subs[0], T0 + 5)  # the epoch
    assert await both(sids[2], subs[2], T0 + 5)


async def test_every_key_is_under_the_prefix_and_holds_no_secret(
    shared: RedisSessionStore, redis_url: str, unique_prefix: str
) -> None:
    sub = "alice@example.com"
    new = await shared.create(SessionGrant(sub=sub), now=T0)
    rotated = await shared.rotate(new.refresh_token, now=T0 + 1)
    await shared.first_use("dpop-jti", "the-jti-value", 60, now=T0)
    await shared.incr_failures(f"totp:{sub}", 300, lock_after=1, lock_for=60, now=T0)
    await shared.revoke_all(now=T0 - 100)
    with redis.Redis.from_url(redis_url) as c:
        keys = [k.decode() for k in c.scan_iter(match=f"{unique_prefix}:*")]
        dump = b"".join(c.dump(k) or b"" for k in keys)
        ttls = {k: c.pttl(k) for k in keys}
    assert keys
    assert all(k.startswith(f"{unique_prefix}:") for k in keys)
    secrets = [new.refresh_token, rotated.refresh_token or "", "the-jti-value", sub]
    for secret in secrets:
        assert all(secret not in k for k in keys)
    for token in secrets[:3]:
        assert token.encode() not in dump
    epoch = f"{unique_prefix}:{{all}}:epoch"
    assert ttls.pop(epoch) == -1  # the global epoch is kept
    assert ttls
    assert all(ttl > 0 for ttl in ttls.values())
    assert not any(k.endswith(":lock") and "{s:" in k for k in keys)  # refresh lock released


async def test_a_corrupt_record_fails_closed(shared: RedisSessionStore, redis_url: str) -> None:
    sid = (await shared.create(SessionGrant(sub="bob"), now=T0)).session.sid
    with redis.Redis.from_url(redis_url) as c:
        c.hset(f"{shared._keys.session(sid)}", "abs", "not-a-number")
    with pytest.raises(SessionStoreUnavailable):
        await shared.get(sid, now=T0)
    with pytest.raises(SessionStoreUnavailable):
        await shared.is_revoked(sid, "bob", T0, now=T0)


@pytest.mark.parametrize("field", ["c", "seen", "abs", "idle"])
async def test_a_session_missing_a_clock_fails_closed_on_both_paths(
    shared: RedisSessionStore, piped: RedisSessionStore, redis_url: str, field: str
) -> None:
    sid = (await shared.create(SessionGrant(sub="bob"), now=T0)).session.sid
    assert not await shared.is_revoked(sid, "bob", T0, now=T0)  # the intact twin
    with redis.Redis.from_url(redis_url) as c:
        c.hdel(f"{shared._keys.session(sid)}", field)
    for store in (shared, piped):
        with pytest.raises(SessionStoreUnavailable):
            await store.is_revoked(sid, "bob", T0, now=T0)


async def test_a_stopped_server_fails_closed(tmp_path: Path, unique_prefix: str) -> None:
    group = Group()
    try:
        server = start(tmp_path / "redis", free_port())
        group.servers.append(server)
        store = RedisSessionStore(
            parse_redis_uri(f"redis://127.0.0.1:{server.port}/0"),
            settings(unique_prefix, timeout=0.3),
        )
        await store.open()
        new = await store.create(SessionGrant(sub="bob"), now=T0)
        assert not await store.is_revoked(new.session.sid, "bob", T0, now=T0)
        server.stop()
        calls = [
            store.is_revoked(new.session.sid, "bob", T0, now=T0),
            store.get(new.session.sid, now=T0),
            store.rotate(new.refresh_token, now=T0),
            store.create(SessionGrant(sub="bob"), now=T0),
            store.revoke(new.session.sid),
            store.first_use("dpop-jti", "x", 60, now=T0),
            store.incr_failures("k", 60, now=T0),
        ]
        for call in calls:
            with pytest.raises(SessionStoreUnavailable) as caught:
                await call
            assert caught.value.status == 503
        await store.close()
    finally:
        group.stop()


async def test_open_fails_closed_when_nothing_listens(unique_prefix: str) -> None:
    store = RedisSessionStore(
        parse_redis_uri(f"redis://127.0.0.1:{free_port()}/0"), settings(unique_prefix, timeout=0.3)
    )
    with pytest.raises(SessionStoreUnavailable):
        await store.open()
    await store.close()


async def test_a_silent_server_times_out_closed(unique_prefix: str) -> None:
    """A peer that accepts and never answers: the timeout ends the wait, the answer is 503."""
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisSessionStore(
        parse_redis_uri(f"redis://127.0.0.1:{port}/0"), settings(unique_prefix, timeout=0.3)
    )
    try:
        with pytest.raises(SessionStoreUnavailable):
            await store.open()
        with pytest.raises(SessionStoreUnavailable):
            await store.is_revoked("a" * 43, "bob", T0, now=T0)
    finally:
        await store.close()
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_not_opened_store_fails_closed(unique_prefix: str) -> None:
    store: SessionStore = RedisSessionStore(parse_redis_uri("redis://127.0.0.1:1/0"))
    with pytest.raises(SessionStoreUnavailable):
        await store.is_revoked("a" * 43, "bob", T0, now=T0)
    with pytest.raises(RefreshRejected):  # malformed tokens never reach the network
        await store.rotate("not a token", now=T0)


async def test_single_server_revokes_do_not_wait_by_default(
    shared: RedisSessionStore, redis_url: str, unique_prefix: str
) -> None:
    assert shared.revoke_replicas == 0
    waiting = RedisSessionStore(
        parse_redis_uri(redis_url), settings(unique_prefix, revoke_replicas=5)
    )
    await waiting.open()
    try:
        sid = (await waiting.create(SessionGrant(sub="bob"), now=T0)).session.sid
        with pytest.raises(SessionStoreUnavailable, match="not acknowledged"):
            await waiting.revoke(sid)  # no five replicas can acknowledge
        assert await waiting.is_revoked(sid, "bob", T0, now=T0)  # applied on the master anyway
    finally:
        await waiting.close()
