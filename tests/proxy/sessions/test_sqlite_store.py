"""SqliteSessionStore specifics: file safety, WAL, schema version, hashes only, failing closed."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.model import SessionGrant
from proxy.sessions.sqlite_store import SqliteSessionStore
from tests.proxy.sessions.conftest import T0, settings


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteSessionStore]:
    store = SqliteSessionStore(tmp_path / "nested" / "sessions.db", settings("unused"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_file_is_private_and_in_wal_mode(db: SqliteSessionStore, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "sessions.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(path, "PRAGMA user_version") == [(1,)]


async def test_only_hashes_are_stored(db: SqliteSessionStore, tmp_path: Path) -> None:
    new = await db.create(SessionGrant(sub="alice"), now=T0)
    rotated = await db.rotate(new.refresh_token, now=T0 + 1)
    await db.first_use("login-jti", "jti-plaintext-value", 60, now=T0)
    await db.incr_failures("totp:alice", 60, now=T0)
    await db.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "nested").iterdir())
    for secret in (new.refresh_token, rotated.refresh_token or "", "jti-plaintext-value"):
        assert secret.encode() not in raw
    assert b"totp:alice" not in raw


async def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    store = SqliteSessionStore(path)
    with pytest.raises(SessionStoreUnavailable, match="version 99"):
        await store.open()
    await store.close()


async def test_a_store_that_is_not_open_fails_closed(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "s.db")
    with pytest.raises(SessionStoreUnavailable, match="not open"):
        await store.is_revoked("a" * 43, "bob", T0, now=T0)


async def test_a_locked_database_fails_closed_not_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteSessionStore(path, settings("unused", timeout=0.2, lock_ttl=0.2))
    await store.open()
    sid = (await store.create(SessionGrant(sub="bob"), now=T0)).session.sid
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock too long
        with pytest.raises(SessionStoreUnavailable) as caught:
            await store.revoke(sid)
        assert caught.value.status == 503
        other.execute("ROLLBACK")
        assert await store.revoke(sid)  # and it works again once the lock is gone
    finally:
        other.close()
        await store.close()


async def test_corrupt_rows_fail_closed(db: SqliteSessionStore, tmp_path: Path) -> None:
    sid = (await db.create(SessionGrant(sub="bob"), now=T0)).session.sid
    with sqlite3.connect(tmp_path / "nested" / "sessions.db") as conn:
        conn.execute("UPDATE tg_sessions SET identity = 'garbage', last_seen = 'x'")
    with pytest.raises(SessionStoreUnavailable):
        await db.get(sid, now=T0)
    with pytest.raises(SessionStoreUnavailable):
        await db.is_revoked(sid, "bob", T0, now=T0)


async def test_purge_deletes_expired_rows(db: SqliteSessionStore, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "sessions.db"
    await db.create(SessionGrant(sub="old"), now=T0)
    keep = await db.create(SessionGrant(sub="new"), now=T0 + 2000)
    revoked = await db.create(SessionGrant(sub="gone"), now=T0 + 2000)
    await db.revoke_user("gone", now=T0 + 2001)
    await db.first_use("dpop-jti", "a", 10, now=T0)
    await db.incr_failures("k", 10, now=T0)
    assert await db.purge_expired(now=T0 + 2002) >= 2  # (create also purges every 5 min)
    assert rows(path, "SELECT sid FROM tg_sessions") == [(keep.session.sid,)]
    assert rows(path, "SELECT count(*) FROM tg_replay") == [(0,)]
    assert rows(path, "SELECT count(*) FROM tg_failures") == [(0,)]
    assert rows(path, "SELECT sid FROM tg_refresh_tokens") == [(keep.session.sid,)]
    assert revoked.session.sid != keep.session.sid
    assert await db.get(keep.session.sid, now=T0 + 2002) is not None


async def test_concurrent_checks_share_one_thread_hop_and_keep_their_answers(
    db: SqliteSessionStore,
) -> None:
    live = [(await db.create(SessionGrant(sub=f"u{i}"), now=T0)).session for i in range(3)]
    gone = (await db.create(SessionGrant(sub="gone"), now=T0)).session
    await db.revoke(gone.sid)
    before = db.round_trips
    answers = await asyncio.gather(
        *(db.is_revoked(s.sid, s.sub, T0, now=T0 + 1) for s in live),
        db.is_revoked(gone.sid, "gone", T0, now=T0 + 1),
        db.is_revoked(live[0].sid, "someone-else", T0, now=T0 + 1),
    )
    assert answers == [False, False, False, True, True]
    assert db.round_trips - before == 1
    await db.revoke(live[1].sid)  # returns: the very next check sees it
    assert await db.is_revoked(live[1].sid, "u1", T0, now=T0 + 2)
