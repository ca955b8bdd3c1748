"""SqliteRootKwkTable: the KWK table in one SQLite file (one host; the default).

Runs on :class:`tee.db.SqliteRunner` like the KMS's registry and broker: one
connection on its own thread, WAL, ``synchronous=FULL``, writes under the
file's write lock (``BEGIN IMMEDIATE``), so several KMS processes on the host
can share the file. The directory is created 0700: the file holds the table's
half of every live KWK.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from kms.root_errors import RootStoreUnavailable
from kms.root_table import DESTROYED, LIVE, KwkRow, check_row
from tee.db import SqliteRunner
from tee.errors import StoreUnavailable

_DDL: Final = """
CREATE TABLE IF NOT EXISTS tg_root_kwks (
    client_id TEXT NOT NULL,
    kwk_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('live', 'destroyed')),
    share BLOB,
    created_at INTEGER NOT NULL,
    destroyed_at INTEGER,
    PRIMARY KEY (client_id, kwk_id),
    CHECK ((state = 'live') = (share IS NOT NULL))
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS tg_root_kwks_live
    ON tg_root_kwks (client_id, version) WHERE state = 'live';
"""


class SqliteRootKwkTable:
    """A :class:`kms.root_table.RootKwkTable` in a SQLite file."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self._path = path
        self._db = SqliteRunner(path, ddl=_DDL, timeout=timeout)

    @property
    def description(self) -> str:
        return f"sqlite:{self._path}"

    async def open(self) -> None:
        await self._guard("open", self._db.open)

    async def close(self) -> None:
        await self._db.close()

    async def add(
        self, client: str, version: int, kwk_id: bytes, share: bytes, *, now: int
    ) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO tg_root_kwks (client_id, kwk_id, version, state, share, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (client_id, version) WHERE state = 'live' DO NOTHING",
                (client, kwk_id.hex(), version, LIVE, share, now),
            )
            return cur.rowcount == 1

        return await self._write("add", insert)

    async def get(self, client: str, kwk_id: bytes) -> KwkRow | None:
        def select(conn: sqlite3.Connection) -> tuple[object, ...] | None:
            row: tuple[object, ...] | None = conn.execute(
                "SELECT version, state, share FROM tg_root_kwks WHERE client_id = ? AND kwk_id = ?",
                (client, kwk_id.hex()),
            ).fetchone()
            return row

        row = await self._guard("get", lambda: self._db.read(select))
        return None if row is None else check_row(row)

    async def destroy(self, client: str, kwk_id: bytes, *, now: int) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE tg_root_kwks SET state = ?, share = NULL, destroyed_at = ?"
                " WHERE client_id = ? AND kwk_id = ? AND state = ?",
                (DESTROYED, now, client, kwk_id.hex(), LIVE),
            )
            return cur.rowcount == 1

        return await self._write("destroy", update)

    async def _write(self, what: str, op: Callable[[sqlite3.Connection], bool]) -> bool:
        return await self._guard(what, lambda: self._db.write(op))

    async def _guard[T](self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except StoreUnavailable as e:
            raise RootStoreUnavailable(f"kms: root table {self.description} failed: {what}") from e
