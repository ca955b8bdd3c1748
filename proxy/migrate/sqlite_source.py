"""A column of a table in an existing SQLite file, read by ``rowid`` and written by compare-and-set.

The file must exist (it is opened read-write, never created). Every call
runs in a worker thread so the event loop never blocks; one connection, used
by one call at a time. :meth:`SqliteSource.apply` is one ``BEGIN IMMEDIATE``
transaction whose updates each carry ``AND column = <value read>``. Tables
declared ``WITHOUT ROWID`` need ``key_column`` (their primary key).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from proxy.migrate.errors import MigrateError
from proxy.migrate.source import Change, Row, Target, quote


class SqliteSource:
    """:class:`~proxy.migrate.source.Source` over a SQLite file."""

    engine: Literal["sqlite"] = "sqlite"

    def __init__(self, path: Path, target: Target, *, timeout: float = 10.0) -> None:
        self._path = path
        self._target = target
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        # Identifiers are checked and quoted (Target, quote); --where is trusted operator SQL.
        t = target
        table, column = quote(t.table), quote(t.column)
        key = quote(t.key_column) if t.key_column else "rowid"
        owner = f", {quote(t.owner_column)}" if t.owner_column else ""
        where = f" AND ({t.where})" if t.where else ""
        select = f"SELECT {key}, {column}{owner} FROM {table} WHERE 1{where}"  # noqa: S608
        self._probe = f"{select} LIMIT 0"
        self._count = f"SELECT count(*) FROM {table} WHERE 1{where}"  # noqa: S608
        self._first = f"{select} ORDER BY {key} LIMIT ?"
        self._next = f"{select} AND {key} > ? ORDER BY {key} LIMIT ?"
        self._update = f"UPDATE {table} SET {column} = ? WHERE {key} = ? AND {column} = ?"  # noqa: S608

    async def open(self) -> None:
        """Open the existing file and check table, columns and key with an empty query."""
        if not self._path.is_file():
            raise MigrateError("migrate: the SQLite file does not exist")
        try:
            self._conn = await asyncio.to_thread(self._connect)
        except sqlite3.Error as e:
            raise self._error(e) from e
        await self._check_columns()
        await self._run(lambda c: c.execute(self._probe))

    async def _check_columns(self) -> None:
        """Every named column exists (SQLite reads an unknown "name" as a string literal)."""
        t = self._target
        schema, _, table = t.table.rpartition(".")
        sql = "SELECT name FROM pragma_table_info(?, ?)"
        found = await self._run(lambda c: c.execute(sql, (table, schema or "main")).fetchall())
        names = {str(r[0]) for r in found}
        if not names:
            raise MigrateError(f"migrate: sqlite: no table {t.table}")
        for what, name in (("column", t.column), ("owner column", t.owner_column),
                           ("key column", t.key_column)):  # fmt: skip
            if name is not None and name not in names:
                raise MigrateError(f"migrate: sqlite: {t.table} has no {what} {name}")

    async def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(conn.close)

    async def count(self) -> int:
        """Rows matching ``where``."""
        row = await self._run(lambda c: c.execute(self._count).fetchone())
        return int(row[0]) if row else 0

    async def fetch(self, after: object | None, limit: int) -> list[Row]:
        """The next ``limit`` rows after key ``after``."""
        sql, args = (self._first, (limit,)) if after is None else (self._next, (after, limit))
        rows = await self._run(lambda c: c.execute(sql, args).fetchall())
        has_owner = self._target.owner_column is not None
        return [Row(r[0], r[1], None if not has_owner or r[2] is None else str(r[2])) for r in rows]

    async def apply(self, changes: Sequence[Change]) -> int:
        """One transaction; each row written only if it still holds the value read."""
        params = [(c.new, c.key, c.old) for c in changes]

        def write(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                written = sum(conn.execute(self._update, p).rowcount for p in params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return written

        return await self._run(write)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self._path.absolute().as_uri() + "?mode=rw",
            uri=True,
            timeout=self._timeout,
            isolation_level=None,
            check_same_thread=False,
        )

    async def _run[T](self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise MigrateError("migrate: the source is not open")
        async with self._lock:
            try:
                return await asyncio.to_thread(fn, conn)
            except sqlite3.Error as e:
                raise self._error(e) from e

    def _error(self, e: sqlite3.Error) -> MigrateError:
        """SQLite's message names tables and columns, not row values; first line only."""
        text = str(e).splitlines()[0][:200] if str(e) else ""
        where = f"{self._target.table}.{self._target.column}"
        return MigrateError(f"migrate: sqlite: {where}: {type(e).__name__}: {text}")
