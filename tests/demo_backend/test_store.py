"""The SQLite file: persistence across restarts, WAL, and what is (not) stored in the clear."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from demo_backend.app import DB_FILE
from demo_backend.sessions import COOKIE_NAME

from tests.demo_backend.support import MakeClient, login, record_body


def _rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(data_dir / DB_FILE)) as conn:
        return list(conn.execute(sql).fetchall())


async def test_records_and_sessions_survive_a_restart(
    make_client: MakeClient, data_dir: Path
) -> None:
    first = await make_client()
    alice = await login(first, "alice")
    created = await (await first.post("/api/users", json=record_body(), headers=alice)).json()
    await first.close()

    second = await make_client()
    # Same secret and same sessions table: the cookie from before the restart still works.
    resp = await second.get(f"/api/users/{created['id']}", headers=alice)
    assert resp.status == 200
    assert await resp.json() == created
    bob = await login(second, "bob")
    assert await (await second.get("/api/users", headers=bob)).json() == {"users": [created]}


async def test_a_fresh_data_dir_starts_empty(make_client: MakeClient, tmp_path: Path) -> None:
    first = await make_client()
    alice = await login(first, "alice")
    await first.post("/api/users", json=record_body(), headers=alice)

    other = await make_client(tmp_path / "other")
    # The other app has its own secret: the first app's cookie means nothing there.
    assert (await other.get("/api/users", headers=alice)).status == 401
    fresh = await login(other, "alice")
    assert await (await other.get("/api/users", headers=fresh)).json() == {"users": []}


async def test_seed_runs_once(make_client: MakeClient, data_dir: Path) -> None:
    await (await make_client()).close()
    before = _rows(data_dir, "SELECT username, password_hash, role FROM accounts ORDER BY 1")
    await (await make_client()).close()
    after = _rows(data_dir, "SELECT username, password_hash, role FROM accounts ORDER BY 1")
    assert before == after
    assert [(u, r) for u, _, r in after] == [
        ("alice", "user"),
        ("bob", "user"),
        ("carol", "support"),
    ]


async def test_database_uses_wal(make_client: MakeClient, data_dir: Path) -> None:
    await make_client()
    assert _rows(data_dir, "PRAGMA journal_mode") == [("wal",)]


async def test_passwords_are_hashed_not_stored(make_client: MakeClient, data_dir: Path) -> None:
    await make_client()
    hashes = [str(h) for (h,) in _rows(data_dir, "SELECT password_hash FROM accounts")]
    assert len(hashes) == 3
    assert len(set(hashes)) == 3
    for stored in hashes:
        assert stored.startswith("scrypt$")
        assert stored not in ("alice", "bob", "carol")


async def test_session_ids_are_stored_hashed(make_client: MakeClient, data_dir: Path) -> None:
    client = await make_client()
    cookie = (await login(client, "alice"))["Cookie"].removeprefix(f"{COOKIE_NAME}=")
    sid = cookie.split(".")[0]
    stored = [str(h) for (h,) in _rows(data_dir, "SELECT sid_hash FROM sessions")]
    assert len(stored) == 1
    assert sid not in stored[0]
    dump = (data_dir / DB_FILE).read_bytes()
    wal = data_dir / f"{DB_FILE}-wal"
    if wal.exists():
        dump += wal.read_bytes()
    assert sid.encode() not in dump


async def test_data_dir_is_private(make_client: MakeClient, data_dir: Path) -> None:
    await make_client()
    assert data_dir.stat().st_mode & 0o777 == 0o700
