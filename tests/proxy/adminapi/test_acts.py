"""SessionAdmin: audit before the act, the outcome after, and what happens when either side fails."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from audit import AuditLog
from audit.errors import AuditUnavailableError
from audit.schema import AuditValue
from proxy.adminapi.acts import Actor, SessionAdmin
from proxy.adminapi.keys import Role
from proxy.adminapi.listing import sid_hash
from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.redis_store import RedisSessionStore
from proxy.sessions.redis_uri import parse_redis_uri
from proxy.sessions.store import SessionStore, StoreSettings
from tests.conftest import free_port
from tests.proxy.adminapi.conftest import events, new_session
from tests.proxy.sessions.servers import RedisProcess, start

ACTOR = Actor("cli:tester")
OPERATOR = Actor("apikey:ops", Role.OPERATOR, "rid-1")


class FailsOutcome:
    """The real audit log, except that outcome entries ("ok"/"failed") cannot be persisted.

    Stands for a sink that dies between the two entries of one act.
    """

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        if fields.get("result") in ("ok", "failed"):
            raise AuditUnavailableError("audit: sink failed")
        await self._log.emit(event, **fields)


async def test_actor_fields() -> None:
    assert OPERATOR.fields() == {"actor": "apikey:ops", "role": "operator", "request_id": "rid-1"}
    assert ACTOR.fields() == {"actor": "cli:tester", "role": None, "request_id": None}


async def test_revoke_one_records_request_then_outcome(
    store: SessionStore, audit_log: AuditLog, data_dir: Path
) -> None:
    sid = await new_session(store, "alice")
    admin = SessionAdmin(store, audit_log)
    assert await admin.revoke_session(OPERATOR, sid, reason="phished") is True
    assert await store.get(sid) is None
    assert await admin.revoke_session(OPERATOR, sid) is False
    results = [(f["result"], f.get("revoked")) for _, f in events(data_dir)]
    assert results == [("requested", None), ("ok", True), ("requested", None), ("ok", False)]


async def test_outcome_not_recorded_still_reports_the_done_act(
    store: SessionStore, audit_log: AuditLog, data_dir: Path
) -> None:
    sids = [await new_session(store, "alice") for _ in range(2)]
    admin = SessionAdmin(store, FailsOutcome(audit_log))
    assert await admin.revoke_user(ACTOR, "alice") == 2
    assert [await store.get(s) for s in sids] == [None, None]
    assert events(data_dir) == [
        ("admin.user_revoke", {"actor": "cli:tester", "sub": "alice", "result": "requested"})
    ]


async def test_unaudited_act_does_not_happen(
    store: SessionStore, audit_log: AuditLog, data_dir: Path
) -> None:
    sid = await new_session(store, "alice")
    admin = SessionAdmin(store, audit_log)
    await audit_log.close()
    for act in (
        admin.revoke_session(ACTOR, sid),
        admin.revoke_listed(ACTOR, "alice", sid_hash(sid)),
        admin.revoke_user(ACTOR, "alice"),
        admin.revoke_all(ACTOR),
        admin.list_sessions(ACTOR, "alice"),
    ):
        with pytest.raises(AuditUnavailableError):
            await act
    assert await store.get(sid) is not None


@pytest.fixture
async def doomed_redis(
    tmp_path: Path, unique_prefix: str
) -> AsyncIterator[tuple[RedisProcess, SessionStore]]:
    """A private redis-server (stopped by the test) and an open store on it."""
    server = start(tmp_path / "redis", free_port())
    uri = f"redis://127.0.0.1:{server.port}/0"
    store = RedisSessionStore(
        parse_redis_uri(uri), StoreSettings(key_prefix=f"{unique_prefix}:", timeout=0.5)
    )
    await store.open()
    try:
        yield server, store
    finally:
        await store.close()
        server.stop()


async def test_store_down_records_failure_and_raises(
    doomed_redis: tuple[RedisProcess, SessionStore], audit_log: AuditLog, data_dir: Path
) -> None:
    server, store = doomed_redis
    sid = await new_session(store, "alice")
    server.stop()
    admin = SessionAdmin(store, audit_log)
    with pytest.raises(SessionStoreUnavailable):
        await admin.revoke_session(ACTOR, sid)
    with pytest.raises(SessionStoreUnavailable):
        await admin.revoke_user(ACTOR, "alice")
    with pytest.raises(SessionStoreUnavailable):
        await admin.revoke_all(ACTOR)
    with pytest.raises(SessionStoreUnavailable):
        await admin.list_sessions(ACTOR, "alice")
    got = [(e, f["result"], f.get("error")) for e, f in events(data_dir)]
    code = "session_store_unavailable"
    assert got == [
        ("admin.session_revoke", "requested", None),
        ("admin.session_revoke", "failed", code),
        ("admin.user_revoke", "requested", None),
        ("admin.user_revoke", "failed", code),
        ("admin.all_revoke", "requested", None),
        ("admin.all_revoke", "failed", code),
    ]  # a listing that could not be read is not recorded: nothing was shown


async def test_store_down_and_audit_gone_still_raises_the_store_error(
    doomed_redis: tuple[RedisProcess, SessionStore], audit_log: AuditLog, data_dir: Path
) -> None:
    server, store = doomed_redis
    server.stop()
    admin = SessionAdmin(store, FailsOutcome(audit_log))
    with pytest.raises(SessionStoreUnavailable):
        await admin.revoke_user(ACTOR, "alice")
    assert [f["result"] for _, f in events(data_dir)] == ["requested"]


async def test_revoke_all_uses_the_clock(store: SessionStore, audit_log: AuditLog) -> None:
    t = time.time()
    before = await new_session(store, "a", now=t - 5)
    after = await new_session(store, "b", now=t + 5)
    cutoff = await SessionAdmin(store, audit_log, clock=lambda: t).revoke_all(ACTOR)
    assert cutoff == t
    assert await store.get(before, now=t + 6) is None
    assert await store.get(after, now=t + 6) is not None


async def test_revoke_listed_matches_only_that_users_session(
    store: SessionStore, audit_log: AuditLog
) -> None:
    mine, other = await new_session(store, "alice"), await new_session(store, "alice")
    bobs = await new_session(store, "bob")
    admin = SessionAdmin(store, audit_log)
    assert await admin.revoke_listed(ACTOR, "alice", sid_hash(bobs)) is False
    assert await admin.revoke_listed(ACTOR, "alice", sid_hash(mine)) is True
    assert [await store.get(s) is not None for s in (mine, other, bobs)] == [False, True, True]
