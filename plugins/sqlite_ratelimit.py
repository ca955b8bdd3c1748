"""Detokenize rate limits in a SQLite file: the embedded default, shared by every worker on a host.

Same contract as :mod:`plugins.ratelimit` (fixed windows; a refused take
takes nothing; any database problem raises RateLimiterUnavailable so the
message fails closed). Each take is one short ``BEGIN IMMEDIATE``
transaction in a worker thread, so the event loop never blocks and
concurrent workers serialize on SQLite's write lock (``busy_timeout``
bounds the wait). Expired windows are deleted by later takes of the same
key and by an occasional sweep.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from plugins.errors import RateLimiterUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS windows (
    key TEXT PRIMARY KEY,
    ends_at REAL NOT NULL,
    used INTEGER NOT NULL
) WITHOUT ROWID
"""
_SWEEP_EVERY = 1000  # takes between sweeps of expired windows


class SqliteRateLimiter:
    """Fixed windows per key in one SQLite file (WAL), for every worker of one host."""

    def __init__(
        self, path: Path, *, timeout: float = 2.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._path = path
        self._timeout = timeout
        self._clock = clock
        self._local = threading.local()
        self._takes = 0

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a lost window after a crash only resets it
            conn.execute(_SCHEMA)
            self._local.conn = conn
        return conn

    async def take(self, key: str, count: int, *, limit: int, window: float) -> bool:
        """Add ``count`` to ``key``'s window unless that passes ``limit``."""
        if count < 0 or limit < 1 or window <= 0:
            raise ValueError("ratelimit: count >= 0, limit >= 1 and window > 0 are required")
        if count == 0:
            return True
        self._takes += 1
        sweep = self._takes % _SWEEP_EVERY == 0
        try:
            return await asyncio.to_thread(self._take, key, count, limit, window, sweep)
        except sqlite3.Error as e:
            raise RateLimiterUnavailable(f"ratelimit: sqlite failed ({type(e).__name__})") from e

    def _take(self, key: str, count: int, limit: int, window: float, sweep: bool) -> bool:
        conn = self._conn()
        now = self._clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT ends_at, used FROM windows WHERE key = ?", (key,)).fetchone()
            ends_at, used = (now + window, 0) if row is None or row[0] <= now else row
            allowed = used + count <= limit
            if allowed:
                conn.execute(
                    "INSERT OR REPLACE INTO windows (key, ends_at, used) VALUES (?, ?, ?)",
                    (key, ends_at, used + count),
                )
            if sweep:
                conn.execute("DELETE FROM windows WHERE ends_at <= ?", (now,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return allowed

    async def close(self) -> None:
        """Nothing to release: per-thread connections close with their threads."""
