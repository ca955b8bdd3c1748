"""The SQLite session database: connection settings, schema and the shared queries.

One file, shared by every worker process on the host. WAL lets readers run
beside the one writer; ``busy_timeout`` makes a writer wait for another
process's transaction instead of failing. ``synchronous=NORMAL`` is the
default (a crash of the process loses nothing; a power cut may lose the last
commits) and revocations switch to ``FULL`` so a revoke that returned survives
a power cut too. ``user_version`` names the schema; an unknown one is refused.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final

from proxy.sessions.codec import StoredTimes, decode_session
from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.model import Session
from proxy.sessions.refresh import Family
from proxy.sessions.rules import Marks

SCHEMA_VERSION: Final = 1

_DDL: Final = """
CREATE TABLE IF NOT EXISTS tg_sessions (
    sid TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    family_id TEXT NOT NULL,
    identity TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    absolute_expiry REAL NOT NULL,
    idle_timeout REAL NOT NULL,
    rt_current TEXT NOT NULL,
    rt_previous TEXT,
    rt_rotated_at REAL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tg_sessions_subject ON tg_sessions (subject_key, created);
CREATE INDEX IF NOT EXISTS tg_sessions_expiry ON tg_sessions (absolute_expiry);
CREATE TABLE IF NOT EXISTS tg_refresh_tokens (
    hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL,
    family_id TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tg_refresh_tokens_expiry ON tg_refresh_tokens (expires);
CREATE TABLE IF NOT EXISTS tg_marks (
    scope TEXT PRIMARY KEY,
    mark REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tg_replay (
    namespace TEXT NOT NULL,
    digest TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (namespace, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tg_replay_expiry ON tg_replay (expires);
CREATE TABLE IF NOT EXISTS tg_failures (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    window_end REAL NOT NULL,
    locked_until REAL
) WITHOUT ROWID;
"""

GLOBAL_SCOPE: Final = "all"

# One statement answers existence, the clocks, the user's mark and the global epoch.
SELECT_SESSION: Final = """
SELECT s.sub, s.family_id, s.identity, s.created, s.last_seen, s.absolute_expiry,
       s.idle_timeout, s.rt_current, s.rt_previous, s.rt_rotated_at,
       (SELECT mark FROM tg_marks WHERE scope = 'user:' || s.subject_key),
       (SELECT mark FROM tg_marks WHERE scope = 'all')
FROM tg_sessions AS s WHERE s.sid = ?
"""

SELECT_CHECK: Final = """
SELECT s.sub, s.created, s.last_seen, s.absolute_expiry, s.idle_timeout,
       (SELECT mark FROM tg_marks WHERE scope = 'user:' || s.subject_key),
       (SELECT mark FROM tg_marks WHERE scope = 'all')
FROM tg_sessions AS s WHERE s.sid = ?
"""

SET_MARK: Final = """
INSERT INTO tg_marks (scope, mark) VALUES (?, ?)
ON CONFLICT (scope) DO UPDATE SET mark = max(mark, excluded.mark)
"""


def user_scope(subject: str) -> str:
    """The mark scope of a subject key."""
    return f"user:{subject}"


def connect(path: Path, *, busy_timeout: float) -> sqlite3.Connection:
    """Open (creating with mode 0600) and configure the database; runs in the store's thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, SCHEMA_VERSION):
                raise SessionStoreUnavailable(
                    f"sessions: sqlite schema version {version} is not supported"
                )
            for statement in _DDL.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return conn


def session_from_row(sid: str, row: tuple[object, ...]) -> tuple[Session, Family, Marks]:
    """Decode a :data:`SELECT_SESSION` row."""
    sub, family_id, identity, created, seen, absolute, idle, cur, prev, rotated, um, gm = row
    times = StoredTimes(as_float(created), as_float(seen), as_float(absolute), as_float(idle))
    session = decode_session(
        sid=sid, sub=str(sub), family_id=str(family_id), identity=str(identity), times=times
    )
    family = Family(
        current=str(cur),
        previous=None if prev is None else str(prev),
        rotated_at=None if rotated is None else as_float(rotated),
    )
    return session, family, Marks(user=as_opt_float(um), everyone=as_opt_float(gm))


def as_float(value: object) -> float:
    """A stored REAL; SessionStoreUnavailable if the column holds anything else."""
    if not isinstance(value, int | float):
        raise SessionStoreUnavailable("sessions: corrupt session record")
    return float(value)


def as_opt_float(value: object) -> float | None:
    """A nullable stored REAL."""
    return None if value is None else as_float(value)
