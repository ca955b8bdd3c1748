"""PostgresVault (``postgresql://``, ``postgres://``): vault records in one PostgreSQL table.

Rules:
- Table ``<schema>.tokengate_vault`` (schema from the URI's ``schema=``
  parameter, default ``public``), created with its schema on open under an
  advisory lock so replicas starting together do not race.
- Every call is one statement on an autocommit connection: one round trip per
  batch. ``put_new`` is one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT``
  whose ``RETURNING id`` names the inserted rows; the conflict arm only
  rewrites a row whose record has expired (an expired id is free, otherwise a
  deterministic token whose record expired could never be stored again) and
  otherwise does nothing. Reads are ``id = ANY(%s)``. ``replace_outer`` is one
  conditional UPDATE (compare-and-set).
- A statement is atomic: a batch is all or nothing. The commit is durable when
  it returns unless the server runs ``fsync=off`` or ``synchronous_commit=off``
  (:meth:`PostgresVault.durability` reports that).
- Every call has a timeout (client side, and ``statement_timeout`` on the
  server); any failure is :class:`~vault.errors.VaultUnavailable` carrying the
  SQLSTATE, never the server's message (it can quote row values).
- TLS comes from the DSN (``sslmode``, ``sslrootcert``, ``sslcert``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from vault.errors import VaultConfigError, VaultUnavailable
from vault.postgres_pool import Connection, PgPool, Row
from vault.store import Durability, StoredRecord
from vault.store_blob import check_rewrap, first_occurrences, is_live

_CREATE: Final = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {t} (
    id bytea PRIMARY KEY,
    key_version integer NOT NULL,
    outer_ct bytea NOT NULL,
    meta bytea NOT NULL,
    expires bigint
);
CREATE INDEX IF NOT EXISTS tokengate_vault_expires ON {t} (expires) WHERE expires IS NOT NULL;
"""
_INSERT: Final = (
    "INSERT INTO {t} AS v (id, key_version, outer_ct, meta, expires)"
    " SELECT * FROM unnest(%(ids)s::bytea[], %(versions)s::integer[], %(outers)s::bytea[],"
    " %(metas)s::bytea[], %(expires)s::bigint[])"
    " ON CONFLICT (id) DO UPDATE SET key_version = EXCLUDED.key_version,"
    " outer_ct = EXCLUDED.outer_ct, meta = EXCLUDED.meta, expires = EXCLUDED.expires"
    " WHERE v.expires IS NOT NULL AND v.expires <= %(now)s RETURNING id"
)
_GET: Final = (
    "SELECT id, key_version, outer_ct, meta, expires FROM {t}"
    " WHERE id = ANY(%(ids)s) AND (expires IS NULL OR expires > %(now)s)"
)
_DELETE: Final = "DELETE FROM {t} WHERE id = ANY(%(ids)s) RETURNING expires"
_SCAN: Final = (
    "SELECT id, key_version, outer_ct, meta, expires FROM {t}"
    " WHERE id > %(after)s AND (expires IS NULL OR expires > %(now)s)"
    " ORDER BY id LIMIT %(limit)s"
)
_REPLACE: Final = (
    "UPDATE {t} SET key_version = %(new_version)s, outer_ct = %(new_outer)s"
    " WHERE id = %(id)s AND key_version = %(version)s AND outer_ct = %(outer)s"
    " AND meta = %(meta)s AND (expires IS NULL OR expires > %(now)s)"
)
_TABLE: Final = "tokengate_vault"


def split_schema(url: str) -> tuple[str, str]:
    """The libpq URL without tokengate's ``schema=`` parameter, and that schema."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise VaultConfigError("vault: url: postgresql:// expected")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    if len(schemas) > 1 or (schemas and not schemas[0].isidentifier()):
        raise VaultConfigError("vault: url: schema= names one plain identifier")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), (schemas[0] if schemas else "public")


class PostgresVault:
    """Vault records in a PostgreSQL table, shared by gateway replicas."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        timeout: float = 5.0,
        pool_size: int = 4,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._pool = PgPool(url, size=pool_size, timeout=timeout)
        self._timeout = timeout
        self._schema = sql.Identifier(schema)
        self._table = sql.Identifier(schema, _TABLE)
        self._now = now

    @property
    def name(self) -> str:
        """``postgresql``."""
        return "postgresql"

    async def open(self) -> None:
        """Connect once and create the schema and table if absent."""
        create = sql.SQL(_CREATE).format(s=self._schema, t=self._table)

        async def _create(conn: Connection) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tokengate_vault'))")
                await conn.execute(create)

        await self._run("open", _create)

    async def close(self) -> None:
        """Close pooled connections; idempotent."""
        await self._pool.close()

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        """One INSERT for the batch; True where the id was absent (or its record expired)."""
        batch = list(records)
        if not batch:
            return []
        first = first_occurrences(batch)
        unique = [batch[i] for i in first.values()]
        params = {
            "ids": [r.id for r in unique],
            "versions": [r.key_version for r in unique],
            "outers": [r.outer for r in unique],
            "metas": [r.meta for r in unique],
            "expires": [r.expires for r in unique],
            "now": self._now(),
        }
        rows = await self._fetch("put_new", _INSERT, params)
        inserted = {bytes(_bytes(row[0])) for row in rows}
        return [first[r.id] == i and r.id in inserted for i, r in enumerate(batch)]

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        """One SELECT ... = ANY; the live records among ``ids``."""
        if not ids:
            return {}
        rows = await self._fetch("get_many", _GET, {"ids": list(ids), "now": self._now()})
        return {record.id: record for record in map(_record, rows)}

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        """One DELETE; the number of live records among those deleted."""
        if not ids:
            return 0
        now = self._now()
        rows = await self._fetch("delete_many", _DELETE, {"ids": list(set(ids))})
        return sum(1 for (expires,) in rows if is_live(_opt_int(expires), now))

    async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` live records with id > ``after``, in id (byte) order."""
        params = {"after": after or b"", "limit": limit, "now": self._now()}
        return [_record(row) for row in await self._fetch("scan", _SCAN, params)]

    async def replace_outer(self, old: StoredRecord, new: StoredRecord) -> bool:
        """One conditional UPDATE; True if the row still equalled ``old``."""
        check_rewrap(old, new)
        params = {
            "new_version": new.key_version,
            "new_outer": new.outer,
            "id": old.id,
            "version": old.key_version,
            "outer": old.outer,
            "meta": old.meta,
            "now": self._now(),
        }
        query = sql.SQL(_REPLACE).format(t=self._table)

        async def _replace(conn: Connection) -> bool:
            return (await conn.execute(query, params)).rowcount == 1

        return await self._run("replace_outer", _replace)

    async def durability(self) -> Durability:
        """Not durable when the server runs with fsync or synchronous_commit off."""
        query = "SELECT current_setting('fsync'), current_setting('synchronous_commit')"

        async def _settings(conn: Connection) -> Row | None:
            return await (await conn.execute(query)).fetchone()

        row = await self._run("durability", _settings)
        fsync, commit = (str(v) for v in row or ("", ""))
        if fsync != "on":
            return Durability(False, "postgresql: fsync is off")
        if commit == "off":
            return Durability(False, "postgresql: synchronous_commit is off")
        return Durability(True, f"postgresql: fsync on, synchronous_commit {commit}")

    async def _fetch(self, what: str, query: str, params: dict[str, object]) -> list[Row]:
        statement = sql.SQL(query).format(t=self._table)

        async def _rows(conn: Connection) -> list[Row]:
            return await (await conn.execute(statement, params)).fetchall()

        return await self._run(what, _rows)

    async def _run[T](self, what: str, op: Callable[[Connection], Awaitable[T]]) -> T:
        """``op`` on a pooled connection; any failure or timeout becomes VaultUnavailable."""
        try:
            return await self._pool.run(op, name=what)
        except TimeoutError:
            raise VaultUnavailable(f"vault: postgresql: {what} timed out") from None
        except psycopg.Error as e:
            cause = e.sqlstate or type(e).__name__
            raise VaultUnavailable(f"vault: postgresql: {what} failed ({cause})") from e


def _record(row: Row) -> StoredRecord:
    record_id, version, outer, meta, expires = row
    if not isinstance(version, int):
        raise VaultUnavailable("vault: postgresql: a stored record is malformed")
    return StoredRecord(
        id=_bytes(record_id),
        key_version=version,
        outer=_bytes(outer),
        meta=_bytes(meta),
        expires=_opt_int(expires),
    )


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    raise VaultUnavailable("vault: postgresql: a stored record is malformed")


def _opt_int(value: object) -> int | None:
    if value is None or isinstance(value, int):
        return value
    raise VaultUnavailable("vault: postgresql: a stored record is malformed")
