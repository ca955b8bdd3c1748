"""PostgreSQL sink: entries and checkpoints in two tables of one schema.

Tables (created when absent, under an advisory lock so replicas starting
together do not race; a role with only INSERT and SELECT works once they
exist):
- ``audit_entries(id, writer, seq, ts, event, line)``: ``line`` is the entry's
  exact canonical JSON (without the newline), the other columns are copies for
  querying; ``id`` is insertion order, which the verifier follows.
- ``audit_checkpoints(id, writer, seq, ts, final, record)``: ``record`` is the
  checkpoint record line (without the newline).

One transaction per batch; each operation runs under ``timeout`` (client side,
plus ``statement_timeout`` on the server), and opening under
``connect_timeout``. Any failure closes the connection: the audit log fails
closed, so a half-known connection state is never reused.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import psycopg
from psycopg import sql

from audit.checkpoint import Checkpoint
from audit.config import PostgresAuditConfig
from audit.entry import Entry
from audit.errors import AuditUnavailableError

ENTRIES = "audit_entries"
CHECKPOINTS = "audit_checkpoints"

_DDL = (
    """CREATE TABLE IF NOT EXISTS {schema}.audit_entries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        writer text NOT NULL,
        seq bigint NOT NULL,
        ts timestamptz NOT NULL,
        event text NOT NULL,
        line text NOT NULL,
        UNIQUE (writer, seq))""",
    "CREATE INDEX IF NOT EXISTS audit_entries_writer_id ON {schema}.audit_entries (writer, id)",
    """CREATE TABLE IF NOT EXISTS {schema}.audit_checkpoints (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        writer text NOT NULL,
        seq bigint NOT NULL,
        ts timestamptz NOT NULL,
        final boolean NOT NULL,
        record text NOT NULL,
        UNIQUE (writer, seq))""",
)
_INSERT_ENTRIES = """INSERT INTO {schema}.audit_entries (writer, seq, ts, event, line)
    SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[])"""
_INSERT_CHECKPOINTS = """INSERT INTO {schema}.audit_checkpoints (writer, seq, ts, final, record)
    SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[], %s::boolean[], %s::text[])"""


async def connect_postgres(
    config: PostgresAuditConfig,
) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """An autocommit connection with ``statement_timeout`` set, opened within the timeouts."""
    try:
        async with asyncio.timeout(config.connect_timeout + config.timeout):
            conn = await psycopg.AsyncConnection.connect(
                config.dsn.get_secret_value(),
                autocommit=True,
                connect_timeout=max(1, math.ceil(config.connect_timeout)),
                application_name="tokengate-audit",
            )
            try:
                await conn.execute(
                    sql.SQL("SET statement_timeout = {}").format(
                        sql.Literal(int(config.timeout * 1000))
                    )
                )
            except BaseException:
                await conn.close()
                raise
    except (psycopg.Error, OSError, TimeoutError) as e:
        raise AuditUnavailableError("audit: cannot connect to the postgresql sink") from e
    return conn


class PostgresSink:
    """Entry and checkpoint sink on one PostgreSQL connection."""

    def __init__(
        self, conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str, *, timeout: float
    ) -> None:
        self._conn = conn
        self._schema = sql.Identifier(schema)
        self._timeout = timeout
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, config: PostgresAuditConfig) -> PostgresSink:
        """Connect and create the schema and tables when absent."""
        conn = await connect_postgres(config)
        sink = cls(conn, config.db_schema, timeout=config.timeout)
        try:
            await sink._create_tables(config.db_schema)
        except (psycopg.Error, OSError, TimeoutError) as e:
            await sink.close()
            raise AuditUnavailableError("audit: cannot prepare the postgresql sink tables") from e
        except BaseException:
            await sink.close()
            raise
        return sink

    @property
    def name(self) -> str:
        return "postgresql"

    async def write_entries(self, entries: Sequence[Entry]) -> None:
        """Insert ``entries`` in one transaction."""
        await self._insert(
            _INSERT_ENTRIES,
            [
                [e.writer for e in entries],
                [e.seq for e in entries],
                [e.ts for e in entries],
                [e.event for e in entries],
                [e.line[:-1].decode("utf-8") for e in entries],
            ],
        )

    async def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Insert ``checkpoints`` in one transaction."""
        await self._insert(
            _INSERT_CHECKPOINTS,
            [
                [c.writer for c in checkpoints],
                [c.seq for c in checkpoints],
                [c.ts for c in checkpoints],
                [c.final for c in checkpoints],
                [c.record_line()[:-1].decode("utf-8") for c in checkpoints],
            ],
        )

    async def close(self) -> None:
        """Close the connection (idempotent, bounded by the timeout)."""
        if self._conn.closed:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._conn.close()
        except (psycopg.Error, OSError, TimeoutError):
            return  # the server side ends with the socket; nothing more to release here

    async def _insert(self, statement: str, columns: list[list[object]]) -> None:
        query = sql.SQL(statement).format(schema=self._schema)
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout), self._conn.transaction():
                    await self._conn.execute(query, columns)
            except BaseException:
                await self.close()
                raise

    async def _create_tables(self, schema: str) -> None:
        async with asyncio.timeout(self._timeout), self._conn.transaction():
            await self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"tokengate.audit.{schema}"],
            )
            cur = await self._conn.execute(
                "SELECT to_regnamespace(%s), to_regclass(%s), to_regclass(%s)",
                [schema, f'"{schema}".{ENTRIES}', f'"{schema}".{CHECKPOINTS}'],
            )
            row = await cur.fetchone()
            if row is not None and all(v is not None for v in row):
                return  # everything exists: no DDL, so an INSERT/SELECT-only role suffices
            if row is None or row[0] is None:
                await self._conn.execute(sql.SQL("CREATE SCHEMA {}").format(self._schema))
            for statement in _DDL:
                await self._conn.execute(sql.SQL(statement).format(schema=self._schema))
