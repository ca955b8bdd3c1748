"""The SessionStore contract, run on every backend (memory, SQLite, Redis, Sentinel, Cluster).

Clocks are injected (``now=``); nothing sleeps. Every allow has its deny twin.
"""

from __future__ import annotations

import asyncio

import pytest

from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected
from proxy.sessions.model import SessionGrant, is_family_id, is_sid
from proxy.sessions.refresh import new_refresh_token
from proxy.sessions.store import SessionStore
from tests.proxy.sessions.conftest import T0, Stores

IDLE = 1800.0
ABSOLUTE = 43200.0
GRANT = SessionGrant(
    sub="alice@example.com",
    tenant="acme",
    roles=("admin", "viewer"),
    amr=("pwd", "otp", "mfa"),
    acr="urn:tokengate:mfa",
    auth_time=int(T0) - 5,
    cnf_jkt="A" * 43,
    mfa_enrolled=True,
    mfa_time=T0 - 1,
)


async def test_create_then_get_returns_every_field(store: SessionStore) -> None:
    new = await store.create(GRANT, now=T0)
    s = new.session
    assert is_sid(s.sid)
    assert is_family_id(s.family_id)
    assert len(new.refresh_token) == 43
    got = await store.get(s.sid, now=T0 + 1)
    assert got == s
    assert (got.sub, got.tenant, got.roles, got.amr) == (GRANT.sub, "acme", GRANT.roles, GRANT.amr)
    assert (got.acr, got.auth_time, got.cnf_jkt) == (GRANT.acr, GRANT.auth_time, GRANT.cnf_jkt)
    assert got.mfa
    assert got.mfa_enrolled
    assert got.mfa_time == T0 - 1
    assert (got.created, got.last_seen) == (T0, T0)
    assert (got.absolute_expiry, got.idle_timeout) == (T0 + ABSOLUTE, IDLE)


async def test_unknown_session_is_none_and_revoked(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    other = (await store.create(SessionGrant(sub="carol"), now=T0)).session.sid
    await store.revoke(other)
    assert await store.get(other, now=T0) is None
    assert await store.is_revoked(other, "carol", T0, now=T0)
    assert not await store.is_revoked(new.session.sid, "bob", T0, now=T0)


@pytest.mark.parametrize("sid", ["", "}{", "a" * 42, "a" * 44, "../" + "a" * 40, "a" * 42 + "}"])
async def test_malformed_session_ids_never_match(store: SessionStore, sid: str) -> None:
    await store.create(SessionGrant(sub="bob"), now=T0)
    assert await store.is_revoked(sid, "bob", T0, now=T0)
    assert await store.get(sid, now=T0) is None
    assert not await store.touch(sid, now=T0 + 100)
    assert not await store.revoke(sid)


async def test_is_revoked_refuses_another_subject(store: SessionStore) -> None:
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    assert not await store.is_revoked(sid, "bob", T0, now=T0 + 1)
    assert await store.is_revoked(sid, "mallory", T0, now=T0 + 1)


async def test_idle_timeout_is_enforced_server_side(store: SessionStore) -> None:
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    assert await store.get(sid, now=T0 + IDLE - 1) is not None
    assert not await store.is_revoked(sid, "bob", T0, now=T0 + IDLE - 1)
    assert await store.get(sid, now=T0 + IDLE) is None
    assert await store.is_revoked(sid, "bob", T0, now=T0 + IDLE)


async def test_touch_extends_idle_but_is_rate_limited(store: SessionStore) -> None:
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    assert not await store.touch(sid, now=T0 + 30)  # within touch_interval (60 s): no write
    assert (await store.get(sid, now=T0 + 31)).last_seen == T0  # type: ignore[union-attr]
    assert await store.touch(sid, now=T0 + 600)
    assert (await store.get(sid, now=T0 + 601)).last_seen == T0 + 600  # type: ignore[union-attr]
    assert await store.get(sid, now=T0 + 600 + IDLE - 1) is not None
    assert await store.get(sid, now=T0 + 600 + IDLE) is None


async def test_touch_never_resurrects_an_idle_session(store: SessionStore) -> None:
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    assert not await store.touch(sid, now=T0 + IDLE + 1)
    assert await store.get(sid, now=T0 + IDLE + 2) is None
    assert not await store.touch("x" * 43, now=T0 + 100)


async def test_absolute_lifetime_ends_an_active_session(store: SessionStore) -> None:
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    t = T0
    while t + 1000 < T0 + ABSOLUTE:
        t += 1000
        assert await store.touch(sid, now=t)
    assert await store.get(sid, now=T0 + ABSOLUTE - 1) is not None
    assert await store.get(sid, now=T0 + ABSOLUTE) is None
    assert await store.is_revoked(sid, "bob", T0, now=T0 + ABSOLUTE)


async def test_rotate_mints_a_new_token_every_use(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    first = await store.rotate(new.refresh_token, now=T0 + 100)
    assert first.outcome == "rotated"
    assert first.refresh_token not in (None, new.refresh_token)
    assert first.session.sid == new.session.sid
    assert first.session.last_seen == T0 + 100
    assert first.refresh_token is not None
    second = await store.rotate(first.refresh_token, now=T0 + 200)
    assert second.outcome == "rotated"
    assert second.refresh_token != first.refresh_token
    assert (await store.get(new.session.sid, now=T0 + 201)).last_seen == T0 + 200  # type: ignore[union-attr]


async def test_grace_window_returns_the_session_without_minting(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    rotated = await store.rotate(new.refresh_token, now=T0 + 100)
    late_tab = await store.rotate(new.refresh_token, now=T0 + 110)  # 10 s: still in grace
    assert late_tab.outcome == "grace"
    assert late_tab.refresh_token is None
    assert late_tab.session.sid == new.session.sid
    assert rotated.refresh_token is not None
    again = await store.rotate(rotated.refresh_token, now=T0 + 111)  # the successor still works
    assert again.outcome == "rotated"


async def test_reuse_after_grace_revokes_the_family(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    rotated = await store.rotate(new.refresh_token, now=T0 + 100)
    with pytest.raises(RefreshReuseDetected) as caught:
        await store.rotate(new.refresh_token, now=T0 + 110.5)
    assert (caught.value.sid, caught.value.sub) == (new.session.sid, "bob")
    assert caught.value.family_id == new.session.family_id
    assert caught.value.status == 401
    assert caught.value.revoked
    assert await store.get(new.session.sid, now=T0 + 111) is None
    assert await store.is_revoked(new.session.sid, "bob", T0, now=T0 + 111)
    assert rotated.refresh_token is not None
    with pytest.raises(RefreshRejected) as successor:  # the thief's or the user's: both dead
        await store.rotate(rotated.refresh_token, now=T0 + 112)
    assert not isinstance(successor.value, RefreshReuseDetected)


async def test_an_older_token_is_reuse_even_inside_the_grace(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    one = await store.rotate(new.refresh_token, now=T0 + 100)
    assert one.refresh_token is not None
    await store.rotate(one.refresh_token, now=T0 + 101)
    with pytest.raises(RefreshReuseDetected):
        await store.rotate(new.refresh_token, now=T0 + 102)  # grandparent: never graced


@pytest.mark.parametrize("token", ["", "short", "!" * 43, "a" * 44, "a" * 43])
async def test_rotate_rejects_unknown_or_malformed_tokens(store: SessionStore, token: str) -> None:
    with pytest.raises(RefreshRejected) as caught:
        await store.rotate(token, now=T0)
    assert not isinstance(caught.value, RefreshReuseDetected)
    assert caught.value.reason in ("malformed", "unknown")


async def test_rotate_rejects_an_idle_session(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    with pytest.raises(RefreshRejected) as caught:
        await store.rotate(new.refresh_token, now=T0 + IDLE)
    assert caught.value.reason == "expired"
    ok = await store.create(SessionGrant(sub="bob"), now=T0)
    assert (await store.rotate(ok.refresh_token, now=T0 + IDLE - 1)).outcome == "rotated"


async def test_concurrent_refresh_rotates_exactly_once(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    results = await asyncio.gather(
        *(store.rotate(new.refresh_token, now=T0 + 50) for _ in range(12))
    )
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == ["grace"] * 11 + ["rotated"]
    assert {r.session.sid for r in results} == {new.session.sid}
    (winner,) = [r for r in results if r.outcome == "rotated"]
    assert winner.refresh_token is not None
    assert (await store.rotate(winner.refresh_token, now=T0 + 51)).outcome == "rotated"


async def test_revoke_one_session(store: SessionStore) -> None:
    new = await store.create(SessionGrant(sub="bob"), now=T0)
    keep = await store.create(SessionGrant(sub="bob"), now=T0)
    assert await store.revoke(new.session.sid)
    assert not await store.revoke(new.session.sid)
    assert await store.is_revoked(new.session.sid, "bob", T0, now=T0 + 1)
    with pytest.raises(RefreshRejected):
        await store.rotate(new.refresh_token, now=T0 + 1)
    assert not await store.is_revoked(keep.session.sid, "bob", T0, now=T0 + 1)


async def test_revoke_user_ends_every_session_of_that_user_only(store: SessionStore) -> None:
    a1 = await store.create(SessionGrant(sub="alice"), now=T0)
    a2 = await store.create(SessionGrant(sub="alice"), now=T0 + 10)
    b = await store.create(SessionGrant(sub="bob"), now=T0)
    assert await store.revoke_user("alice", now=T0 + 20) == 2
    for s in (a1.session, a2.session):
        assert await store.is_revoked(s.sid, "alice", T0 + 10, now=T0 + 21)
        assert await store.get(s.sid, now=T0 + 21) is None
    with pytest.raises(RefreshRejected):
        await store.rotate(a2.refresh_token, now=T0 + 21)
    assert not await store.is_revoked(b.session.sid, "bob", T0, now=T0 + 21)
    later = await store.create(SessionGrant(sub="alice"), now=T0 + 30)  # a new login works
    assert not await store.is_revoked(later.session.sid, "alice", T0 + 30, now=T0 + 31)
    assert [s.sid for s in await store.list_sessions("alice", now=T0 + 31)] == [later.session.sid]


async def test_revoke_all_is_one_epoch(store: SessionStore) -> None:
    old = [await store.create(SessionGrant(sub=f"user{i}"), now=T0) for i in range(3)]
    await store.revoke_all(now=T0 + 5)
    for n in old:
        assert await store.is_revoked(n.session.sid, n.session.sub, T0, now=T0 + 6)
        assert await store.get(n.session.sid, now=T0 + 6) is None
        with pytest.raises(RefreshRejected):
            await store.rotate(n.refresh_token, now=T0 + 6)
    fresh = await store.create(SessionGrant(sub="user0"), now=T0 + 7)
    assert not await store.is_revoked(fresh.session.sid, "user0", T0 + 7, now=T0 + 8)
    await store.revoke_all(now=T0 + 1)  # marks never move back
    assert await store.is_revoked(old[0].session.sid, "user0", T0, now=T0 + 9)


async def test_is_revoked_is_at_most_one_round_trip(stores: Stores) -> None:
    store = await stores.open()
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    expected = 0 if stores.backend == "memory" else 1
    for check in range(5):
        before = store.round_trips
        assert not await store.is_revoked(sid, "bob", T0, now=T0 + check)
        assert store.round_trips - before == expected
    await store.revoke_user("bob", now=T0 + 10)
    before = store.round_trips
    assert await store.is_revoked(sid, "bob", T0, now=T0 + 11)
    assert store.round_trips - before == expected


async def test_list_sessions_oldest_first_and_only_valid(store: SessionStore) -> None:
    first = await store.create(SessionGrant(sub="dave"), now=T0)
    second = await store.create(SessionGrant(sub="dave"), now=T0 + 5)
    gone = await store.create(SessionGrant(sub="dave"), now=T0 + 6)
    await store.create(SessionGrant(sub="erin"), now=T0)
    await store.revoke(gone.session.sid)
    listed = await store.list_sessions("dave", now=T0 + 10)
    assert [s.sid for s in listed] == [first.session.sid, second.session.sid]
    assert await store.list_sessions("nobody", now=T0) == []


async def test_first_use_is_a_replay_guard(store: SessionStore) -> None:
    assert await store.first_use("dpop-jti", "jti-1", 60, now=T0)
    assert not await store.first_use("dpop-jti", "jti-1", 60, now=T0 + 59)
    assert await store.first_use("login-jti", "jti-1", 60, now=T0 + 1)  # other namespace
    assert await store.first_use("dpop-jti", "jti-2", 60, now=T0 + 1)
    assert await store.first_use("dpop-jti", "jti-1", 60, now=T0 + 60)  # expired: new again
    with pytest.raises(ValueError, match="namespace"):
        await store.first_use("Bad Namespace", "x", 60, now=T0)
    with pytest.raises(ValueError, match="ttl"):
        await store.first_use("totp", "x", 0, now=T0)


async def test_failure_counter_locks_out_and_resets(store: SessionStore) -> None:
    key = "totp:alice"
    counts = [
        await store.incr_failures(key, 300, lock_after=3, lock_for=900, now=T0 + i)
        for i in range(2)
    ]
    assert counts == [1, 2]
    assert await store.locked_until(key, now=T0 + 2) is None
    assert await store.incr_failures(key, 300, lock_after=3, lock_for=900, now=T0 + 2) == 3
    assert await store.locked_until(key, now=T0 + 3) == T0 + 2 + 900
    assert await store.locked_until(key, now=T0 + 902) is None  # the lock ends by itself
    assert await store.locked_until("totp:bob", now=T0 + 3) is None
    await store.reset(key)
    assert await store.locked_until(key, now=T0 + 4) == T0 + 902  # a reset keeps the lock
    assert await store.incr_failures(key, 300, now=T0 + 5) == 1
    await store.reset(key, unlock=True)
    assert await store.locked_until(key, now=T0 + 6) is None


async def test_failure_window_restarts_after_it_ends(store: SessionStore) -> None:
    assert await store.incr_failures("login:ip", 60, now=T0) == 1
    assert await store.incr_failures("login:ip", 60, now=T0 + 59) == 2
    assert await store.incr_failures("login:ip", 60, now=T0 + 60) == 1


async def test_purge_keeps_what_is_alive(store: SessionStore) -> None:
    alive = await store.create(SessionGrant(sub="bob"), now=T0 + IDLE)
    dead = await store.create(SessionGrant(sub="bob"), now=T0)
    await store.first_use("dpop-jti", "old", 10, now=T0)
    purged = await store.purge_expired(now=T0 + IDLE + 1)
    assert purged >= 0
    assert await store.get(alive.session.sid, now=T0 + IDLE + 1) is not None
    assert await store.get(dead.session.sid, now=T0 + IDLE + 1) is None
    assert (await store.rotate(alive.refresh_token, now=T0 + IDLE + 2)).outcome == "rotated"


async def test_a_well_formed_token_of_no_family_is_unknown(store: SessionStore) -> None:
    token, _ = new_refresh_token()
    with pytest.raises(RefreshRejected) as caught:
        await store.rotate(token, now=T0)
    assert caught.value.reason == "unknown"
