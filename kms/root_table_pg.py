"""PostgresRootKwkTable: the KWK table in PostgreSQL, shared by KMS replicas.

Runs on :class:`tee.db.PgRunner` like the KMS's registry and broker: the
table lives in the configured schema (created if absent, DDL under an
advisory lock), statements time out, a failed connection is dropped. Each
call is one statement, atomic in the server; the partial unique index makes
"one live row per client and version" hold across replicas.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, LiteralString

from kms.root_errors import RootStoreUnavailable
from kms.root_table import DESTROYED, LIVE, KwkRow, check_row
from kms_client.store import redact
from tee.db import PgConnection, PgRunner
from tee.errors import StoreUnavailable

_DDL: Final = """
CREATE TABLE IF NOT EXISTS tg_root_kwks (
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
CREATE UNIQUE INDEX IF NOT EXISTS tg_root_kwks_live
    ON tg_root_kwks (client_id, version) WHERE state = 'live';
"""

type _Row = tuple[object, ...]


class PostgresRootKwkTable:
    """A :class:`kms.root_table.RootKwkTable` in PostgreSQL."""

    def __init__(self, conninfo: str, *, schema: str, timeout: float = 5.0) -> None:
        self._description = f"{redact(conninfo)} (schema {schema})"
        self._db = PgRunner(conninfo, schema=schema, ddl=_DDL, timeout=timeout)

    @property
    def description(self) -> str:
        return self._description

    async def open(self) -> None:
        await self._guard("open", self._db.open)

    async def close(self) -> None:
        await self._db.close()

    async def add(
        self, client: str, version: int, kwk_id: bytes, share: bytes, *, now: int
    ) -> bool:
        row = await self._one(
            "add",
            "INSERT INTO tg_root_kwks (client_id, kwk_id, version, state, share, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (client_id, version) WHERE state = 'live' DO NOTHING RETURNING 1",
            (client, kwk_id.hex(), version, LIVE, share, now),
        )
        return row is not None

    async def get(self, client: str, kwk_id: bytes) -> KwkRow | None:
        row = await self._one(
            "get",
            "SELECT version, state, share FROM tg_root_kwks WHERE client_id = %s AND kwk_id = %s",
            (client, kwk_id.hex()),
        )
        return None if row is None else check_row(row)

    async def destroy(self, client: str, kwk_id: bytes, *, now: int) -> bool:
        row = await self._one(
            "destroy",
            "UPDATE tg_root_kwks SET state = %s, share = NULL, destroyed_at = %s"
            " WHERE client_id = %s AND kwk_id = %s AND state = %s RETURNING 1",
            (DESTROYED, now, client, kwk_id.hex(), LIVE),
        )
        return row is not None

    async def _one(
        self, what: str, query: LiteralString, params: tuple[object, ...]
    ) -> _Row | None:
        async def one(conn: PgConnection) -> _Row | None:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

        return await self._guard(what, lambda: self._db.run(one))

    async def _guard[T](self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except StoreUnavailable as e:
            raise RootStoreUnavailable(f"kms: root table {self.description} failed: {what}") from e
