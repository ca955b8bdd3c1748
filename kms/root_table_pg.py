"""PostgresRootKwkTable: the KWK table in PostgreSQL, shared by KMS replicas.

The table and its partial unique index (one live row per client and version)
are created on open in ``schema`` under an advisory lock, so replicas starting
together do not race. One autocommit connection, serialised by a lock,
reconnected after a failure; statements time out after 5 s. Each call is one
statement, atomic in the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql

from kms.root_errors import RootStoreUnavailable
from kms.root_table import DESTROYED, LIVE, KwkRow
from kms_client.store import redact, split_params

_TIMEOUT_S = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {s}.tokengate_root_kwks (
    client_id text NOT NULL,
    kwk_id text NOT NULL,
    version bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('live', 'destroyed')),
    share bytea,
    created_at bigint NOT NULL,
    destroyed_at bigint,
    PRIMARY KEY (client_id, kwk_id),
    CHECK ((state = 'live') = (share IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS tokengate_root_kwks_live
    ON {s}.tokengate_root_kwks (client_id, version) WHERE state = 'live';
"""

type _Row = tuple[object, ...]
type _Op[T] = Callable[[psycopg.AsyncConnection[_Row]], Awaitable[T]]


class PostgresRootKwkTable:
    """A :class:`kms.root_table.RootKwkTable` in PostgreSQL."""

    def __init__(self, url: str, *, schema: str) -> None:
        self._url = url
        self._schema = sql.Identifier(schema)
        self._conn: psycopg.AsyncConnection[_Row] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_uri(cls, uri: str) -> PostgresRootKwkTable:
        """From ``postgresql://...?schema=NAME`` (``schema`` defaults to ``public``)."""
        url, params = split_params(uri, {"schema"})
        return cls(url, schema=params.get("schema", "public"))

    @property
    def description(self) -> str:
        return redact(self._url)

    async def open(self) -> None:
        async def create(conn: psycopg.AsyncConnection[_Row]) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tokengate_root_kwks'))")
                await conn.execute(sql.SQL(_SCHEMA).format(s=self._schema))

        await self._run("open", create)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def add(
        self, client: str, version: int, kwk_id: bytes, share: bytes, *, now: int
    ) -> bool:
        query = (
            "INSERT INTO {s}.tokengate_root_kwks"
            " (client_id, kwk_id, version, state, share, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (client_id, version) WHERE state = 'live' DO NOTHING RETURNING 1"
        )
        row = await self._one("add", query, client, kwk_id.hex(), version, LIVE, share, now)
        return row is not None

    async def get(self, client: str, kwk_id: bytes) -> KwkRow | None:
        query = (
            "SELECT version, state, share FROM {s}.tokengate_root_kwks"
            " WHERE client_id = %s AND kwk_id = %s"
        )
        row = await self._one("get", query, client, kwk_id.hex())
        return None if row is None else _row(row)

    async def destroy(self, client: str, kwk_id: bytes, *, now: int) -> bool:
        query = (
            "UPDATE {s}.tokengate_root_kwks SET state = %s, share = NULL, destroyed_at = %s"
            " WHERE client_id = %s AND kwk_id = %s AND state = %s RETURNING 1"
        )
        row = await self._one("destroy", query, DESTROYED, now, client, kwk_id.hex(), LIVE)
        return row is not None

    async def _one(self, what: str, query: str, *params: object) -> _Row | None:
        statement = sql.SQL(query).format(s=self._schema)

        async def one(conn: psycopg.AsyncConnection[_Row]) -> _Row | None:
            cur = await conn.execute(statement, params)
            return await cur.fetchone()

        return await self._run(what, one)

    async def _run[T](self, what: str, op: _Op[T]) -> T:
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True, connect_timeout=_TIMEOUT_S
                    )
                    await self._conn.execute(f"SET statement_timeout = {_TIMEOUT_S * 1000}")
                return await op(self._conn)
            except psycopg.Error as e:
                if self._conn is not None and self._conn.broken:
                    await self._conn.close()
                    self._conn = None
                raise RootStoreUnavailable(
                    f"kms: root table {self.description} failed: {what}"
                ) from e


def _row(row: _Row) -> KwkRow:
    version, state, share = row
    if isinstance(share, memoryview):
        share = bytes(share)
    if not isinstance(version, int) or state not in (LIVE, DESTROYED):
        raise RootStoreUnavailable("kms: root table holds a corrupt row")
    if not (share is None or isinstance(share, bytes)) or (share is None) != (state == DESTROYED):
        raise RootStoreUnavailable("kms: root table holds a corrupt row")
    return KwkRow(version, str(state), share)
