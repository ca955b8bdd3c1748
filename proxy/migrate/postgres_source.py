"""A column of a PostgreSQL table, read by its primary key and written by compare-and-set.

The key is the table's single-column primary key, or ``key_column`` (which
must be unique and not null: the operator says so by naming it). Queries are
composed with :mod:`psycopg.sql` (identifiers quoted by the driver); the
``where`` fragment is trusted operator SQL, pasted verbatim, with ``%``
doubled so that a ``LIKE 'a%'`` is not taken for a placeholder.
:meth:`PostgresSource.apply` is one transaction whose updates each carry
``AND column = <value read>``. Every call has a statement timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import psycopg
from psycopg import sql

from proxy.migrate.errors import MigrateError
from proxy.migrate.source import Change, Row, Target


def _name(qualified: str) -> sql.Identifier:
    return sql.Identifier(*qualified.split(".", 1))


class PostgresSource:
    """:class:`~proxy.migrate.source.Source` over a PostgreSQL table."""

    engine: Literal["postgresql"] = "postgresql"

    def __init__(self, dsn: str, target: Target, *, timeout: float = 30.0) -> None:
        self._dsn = dsn
        self._target = target
        self._timeout = timeout
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._key: sql.Identifier | None = None

    async def open(self) -> None:
        """Connect, find the key, check table and columns with an empty query."""
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=max(1, int(self._timeout)),
                options=f"-c statement_timeout={int(self._timeout * 1000)}",
            )
        except psycopg.Error as e:
            raise MigrateError(f"migrate: postgresql: cannot connect ({type(e).__name__})") from e
        t = self._target
        self._key = sql.Identifier(t.key_column) if t.key_column else await self._primary_key()
        await self._execute(self._select(None) + sql.SQL(" LIMIT 0"), ())

    async def close(self) -> None:
        """Close the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def count(self) -> int:
        """Rows matching ``where``."""
        q = sql.SQL("SELECT count(*) FROM {} WHERE true{}").format(
            _name(self._target.table), self._where()
        )
        rows = await self._execute(q, ())
        return int(str(rows[0][0])) if rows else 0

    async def fetch(self, after: object | None, limit: int) -> list[Row]:
        """The next ``limit`` rows after key ``after``."""
        q = self._select(after) + sql.SQL(" ORDER BY {} LIMIT %s").format(self._key_id())
        args = (limit,) if after is None else (after, limit)
        rows = await self._execute(q, args)
        owned = self._target.owner_column is not None
        return [Row(r[0], r[1], None if not owned or r[2] is None else str(r[2])) for r in rows]

    async def apply(self, changes: Sequence[Change]) -> int:
        """One transaction; each row written only if it still holds the value read."""
        q = sql.SQL("UPDATE {t} SET {c} = %s WHERE {k} = %s AND {c} = %s").format(
            t=_name(self._target.table), c=sql.Identifier(self._target.column), k=self._key_id()
        )
        conn = self._open()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                # executemany pipelines the statements; rowcount is their sum
                await cur.executemany(q, [(c.new, c.key, c.old) for c in changes])
                return max(cur.rowcount, 0)
        except psycopg.Error as e:
            raise self._error(e) from e

    def _select(self, after: object | None) -> sql.Composed:
        t = self._target
        cols = [self._key_id(), sql.Identifier(t.column)]
        if t.owner_column:
            cols.append(sql.Identifier(t.owner_column))
        q = sql.SQL("SELECT {} FROM {} WHERE true{}").format(
            sql.SQL(", ").join(cols), _name(t.table), self._where()
        )
        if after is not None:
            q += sql.SQL(" AND {} > %s").format(self._key_id())
        return q

    def _where(self) -> sql.SQL:
        where = self._target.where
        if not where:
            return sql.SQL("")
        return sql.SQL(" AND (" + where.replace("%", "%%") + ")")  # trusted operator SQL

    async def _primary_key(self) -> sql.Identifier:
        q = sql.SQL(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary"
        )
        regclass = _name(self._target.table).as_string(self._open())
        rows = await self._execute(q, (regclass,))
        if len(rows) != 1:
            raise MigrateError(
                f"migrate: {self._target.table} has no single-column primary key; "
                "name a unique, non-null column with --key-column"
            )
        return sql.Identifier(str(rows[0][0]))

    def _key_id(self) -> sql.Identifier:
        if self._key is None:
            raise MigrateError("migrate: the source is not open")
        return self._key

    def _open(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None:
            raise MigrateError("migrate: the source is not open")
        return self._conn

    async def _execute(
        self, q: sql.SQL | sql.Composed, args: tuple[object, ...]
    ) -> list[tuple[object, ...]]:
        try:
            async with self._open().cursor() as cur:
                await cur.execute(q, args)
                return await cur.fetchall()
        except psycopg.Error as e:
            raise self._error(e) from e

    def _error(self, e: psycopg.Error) -> MigrateError:
        """The server's primary message (names relations and columns); never the DSN."""
        diag = getattr(e, "diag", None)
        text = (diag.message_primary if diag is not None else None) or type(e).__name__
        where = f"{self._target.table}.{self._target.column}"
        return MigrateError(f"migrate: postgresql: {where}: {text[:200]}")
