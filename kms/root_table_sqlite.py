"""SqliteRootKwkTable: the KWK table in one SQLite file (one host; the default).

Each call opens its own connection in a worker thread (no blocking on the
event loop, nothing shared between threads), runs one short transaction and
closes it; WAL journal and a busy timeout let several KMS processes on the
host share the file. The file is created 0600 in a 0700 directory: it holds
the table's half of every live KWK.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from kms.root_errors import RootStoreUnavailable
from kms.root_table import DESTROYED, LIVE, KwkRow

_TIMEOUT_S = 5.0

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS tokengate_root_kwks (
        client_id TEXT NOT NULL,
        kwk_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('live', 'destroyed')),
        share BLOB,
        created_at INTEGER NOT NULL,
        destroyed_at INTEGER,
        PRIMARY KEY (client_id, kwk_id),
        CHECK ((state = 'live') = (share IS NOT NULL))
    )
    """,
    """
    CREATE UNIQUE INDEX IF NOT EXISTS tokengate_root_kwks_live
        ON tokengate_root_kwks (client_id, version) WHERE state = 'live'
    """,
)


class SqliteRootKwkTable:
    """A :class:`kms.root_table.RootKwkTable` in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def description(self) -> str:
        return f"sqlite:{self._path}"

    async def open(self) -> None:
        def create(db: sqlite3.Connection) -> None:
            for statement in _SCHEMA:
                db.execute(statement)

        await asyncio.to_thread(self._prepare_file)
        await self._run("open", create)

    async def close(self) -> None:
        """Nothing is held between calls."""

    async def add(
        self, client: str, version: int, kwk_id: bytes, share: bytes, *, now: int
    ) -> bool:
        def insert(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT INTO tokengate_root_kwks"
                " (client_id, kwk_id, version, state, share, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (client_id, version) WHERE state = 'live' DO NOTHING",
                (client, kwk_id.hex(), version, LIVE, share, now),
            )
            return cur.rowcount == 1

        return await self._run("add", insert)

    async def get(self, client: str, kwk_id: bytes) -> KwkRow | None:
        def select(db: sqlite3.Connection) -> KwkRow | None:
            row = db.execute(
                "SELECT version, state, share FROM tokengate_root_kwks"
                " WHERE client_id = ? AND kwk_id = ?",
                (client, kwk_id.hex()),
            ).fetchone()
            return None if row is None else _row(row)

        return await self._run("get", select)

    async def destroy(self, client: str, kwk_id: bytes, *, now: int) -> bool:
        def update(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE tokengate_root_kwks SET state = ?, share = NULL, destroyed_at = ?"
                " WHERE client_id = ? AND kwk_id = ? AND state = ?",
                (DESTROYED, now, client, kwk_id.hex(), LIVE),
            )
            return cur.rowcount == 1

        return await self._run("destroy", update)

    def _prepare_file(self) -> None:
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            with closing(sqlite3.connect(self._path, timeout=_TIMEOUT_S)) as db:
                db.execute("PRAGMA journal_mode=WAL")  # not allowed inside a transaction
        except (OSError, sqlite3.Error) as e:
            raise RootStoreUnavailable(
                f"kms: root table {self.description}: cannot create the file"
            ) from e

    async def _run[T](self, what: str, op: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            db = sqlite3.connect(self._path, timeout=_TIMEOUT_S, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = op(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                return result
            finally:
                db.close()

        try:
            return await asyncio.to_thread(call)
        except sqlite3.Error as e:
            raise RootStoreUnavailable(f"kms: root table {self.description} failed: {what}") from e


def _row(row: tuple[object, ...]) -> KwkRow:
    version, state, share = row
    if not isinstance(version, int) or state not in (LIVE, DESTROYED):
        raise RootStoreUnavailable("kms: root table holds a corrupt row")
    if not (share is None or isinstance(share, bytes)) or (share is None) != (state == DESTROYED):
        raise RootStoreUnavailable("kms: root table holds a corrupt row")
    return KwkRow(version, str(state), share)
