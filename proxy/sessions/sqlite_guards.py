"""Replay guards and failure counters in the SQLite session database.

Each function is one write transaction run on the store's thread. Values and
counter keys arrive already hashed (:func:`proxy.sessions.store.digest`), so
no jti, code or user name is stored verbatim. Times are the caller's ``now``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write(conn: sqlite3.Connection, *, durable: bool = False) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction; ``durable`` fsyncs its commit (revocations)."""
    if durable:
        conn.execute("PRAGMA synchronous = FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        if durable:
            conn.execute("PRAGMA synchronous = NORMAL")


def first_use(
    conn: sqlite3.Connection, namespace: str, digest: str, now: float, ttl: float
) -> bool:
    """Insert the value unless a live entry exists; True if this was its first use."""
    with write(conn):
        cur = conn.execute(
            "INSERT INTO tg_replay (namespace, digest, expires) VALUES (:ns, :digest, :expires)"
            " ON CONFLICT (namespace, digest) DO UPDATE SET expires = excluded.expires"
            " WHERE tg_replay.expires <= :now",
            {"ns": namespace, "digest": digest, "expires": now + ttl, "now": now},
        )
        return cur.rowcount == 1


def incr_failures(
    conn: sqlite3.Connection,
    key: str,
    *,
    now: float,
    window: float,
    lock_after: int | None,
    lock_for: float,
) -> int:
    """Count one failure in the fixed window; lock the key at ``lock_after``."""
    with write(conn):
        row = conn.execute(
            "SELECT count, window_end, locked_until FROM tg_failures WHERE key = ?", (key,)
        ).fetchone()
        count, end, locked = (0, now + window, None) if row is None else row
        if end <= now:
            count, end = 0, now + window
        count += 1
        if lock_after is not None and count >= lock_after:
            locked = max(locked or 0.0, now + lock_for)
        conn.execute(
            "INSERT INTO tg_failures (key, count, window_end, locked_until) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET count = excluded.count,"
            " window_end = excluded.window_end, locked_until = excluded.locked_until",
            (key, count, end, locked),
        )
        return int(count)


def reset(conn: sqlite3.Connection, key: str, *, unlock: bool) -> None:
    """Zero the count; drop the row's lock too with ``unlock``."""
    with write(conn):
        if unlock:
            conn.execute("DELETE FROM tg_failures WHERE key = ?", (key,))
        else:
            conn.execute("UPDATE tg_failures SET count = 0, window_end = 0 WHERE key = ?", (key,))


def locked_until(conn: sqlite3.Connection, key: str, now: float) -> float | None:
    """The end of the key's lock if it is later than ``now``."""
    row = conn.execute(
        "SELECT locked_until FROM tg_failures WHERE key = ? AND locked_until > ?", (key, now)
    ).fetchone()
    return None if row is None else float(row[0])
