"""PostgresKeyringStore: the keyring in PostgreSQL, shared by replicas.

Tables (created on open, in ``schema``, under an advisory lock so replicas
starting together do not race): ``tokengate_keyring`` (name, version, blob),
``tokengate_key_usage`` (name, purpose, key_version, count) and
``tokengate_kms_secrets`` (name, purpose, secret, value). Compare-and-set is
``UPDATE ... WHERE version = expected`` (or ``INSERT ... ON CONFLICT DO
NOTHING`` for the first save), atomic in the server. One autocommit
connection, serialised by a lock, reconnected after a failure; statements
time out after 5 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql

from kms_client.errors import KeyringConflict, KeyringError
from kms_client.store import StoredKeyring, redact

_TIMEOUT_S = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {s}.tokengate_keyring (
    name text PRIMARY KEY,
    version bigint NOT NULL,
    blob bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.tokengate_key_usage (
    name text NOT NULL,
    purpose text NOT NULL,
    key_version bigint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (name, purpose, key_version)
);
CREATE TABLE IF NOT EXISTS {s}.tokengate_kms_secrets (
    name text NOT NULL,
    purpose text NOT NULL,
    secret text NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (name, purpose, secret)
);
"""

type _Row = tuple[object, ...]
type _Op[T] = Callable[[psycopg.AsyncConnection[_Row]], Awaitable[T]]


class PostgresKeyringStore:
    """Keyring, counters and wrapped secrets in three tables."""

    def __init__(self, url: str, *, name: str, schema: str) -> None:
        self._url = url
        self._name = name
        self._schema = sql.Identifier(schema)
        self._conn: psycopg.AsyncConnection[_Row] | None = None
        self._lock = asyncio.Lock()

    @property
    def description(self) -> str:
        """The URL without password."""
        return redact(self._url)

    async def open(self) -> None:
        """Connect and create the tables if needed."""

        async def create(conn: psycopg.AsyncConnection[_Row]) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tokengate_kms_tables'))")
                await conn.execute(sql.SQL(_SCHEMA).format(s=self._schema))

        await self._run("open", create)

    async def close(self) -> None:
        """Close the connection."""
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def load(self) -> StoredKeyring | None:
        """The row of this keyring."""
        row = await self._one(
            "load", "SELECT version, blob FROM {s}.tokengate_keyring WHERE name = %s", self._name
        )
        if row is None:
            return None
        version, blob = row
        if not isinstance(version, int) or not isinstance(blob, bytes):
            raise KeyringError(f"kms: keyring in {self.description} is corrupt")
        return StoredKeyring(version, blob)

    async def version(self) -> int | None:
        """The version column only."""
        row = await self._one(
            "version", "SELECT version FROM {s}.tokengate_keyring WHERE name = %s", self._name
        )
        return None if row is None else _int(row[0])

    async def save(self, blob: bytes, *, version: int, expected: int | None) -> None:
        """Conditional insert or update; KeyringConflict when no row changed."""
        if expected is None:
            query = (
                "INSERT INTO {s}.tokengate_keyring (name, version, blob) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING RETURNING version"
            )
            row = await self._one("save", query, self._name, version, blob)
        else:
            query = (
                "UPDATE {s}.tokengate_keyring SET version = %s, blob = %s, updated_at = now()"
                " WHERE name = %s AND version = %s RETURNING version"
            )
            row = await self._one("save", query, version, blob, self._name, expected)
        if row is None:
            raise KeyringConflict("kms: keyring changed underneath (another writer)")

    async def add_usage(self, purpose: str, key_version: int, count: int) -> int:
        """Upsert-and-add one counter."""
        query = (
            "INSERT INTO {s}.tokengate_key_usage AS u (name, purpose, key_version, count)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (name, purpose, key_version)"
            " DO UPDATE SET count = u.count + EXCLUDED.count RETURNING count"
        )
        row = await self._one("usage", query, self._name, purpose, key_version, count)
        return 0 if row is None else _int(row[0])

    async def secret_get(self, purpose: str, name: str) -> bytes | None:
        """One secret's value."""
        query = (
            "SELECT value FROM {s}.tokengate_kms_secrets WHERE name=%s AND purpose=%s AND secret=%s"
        )
        row = await self._one("secret", query, self._name, purpose, name)
        return None if row is None else bytes(_bytes(row[0]))

    async def secret_put(self, purpose: str, name: str, value: bytes) -> None:
        """Upsert one secret."""
        query = (
            "INSERT INTO {s}.tokengate_kms_secrets (name, purpose, secret, value)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (name, purpose, secret)"
            " DO UPDATE SET value = EXCLUDED.value RETURNING 1"
        )
        await self._one("secret", query, self._name, purpose, name, value)

    async def secret_replace(self, purpose: str, name: str, old: bytes, new: bytes) -> bool:
        """Conditional update of one secret."""
        query = (
            "UPDATE {s}.tokengate_kms_secrets SET value = %s"
            " WHERE name = %s AND purpose = %s AND secret = %s AND value = %s RETURNING 1"
        )
        return await self._one("secret", query, new, self._name, purpose, name, old) is not None

    async def secret_delete(self, purpose: str, name: str) -> bool:
        """Delete one secret."""
        query = (
            "DELETE FROM {s}.tokengate_kms_secrets"
            " WHERE name = %s AND purpose = %s AND secret = %s RETURNING 1"
        )
        return await self._one("secret", query, self._name, purpose, name) is not None

    async def secret_scan(
        self, purpose: str, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """Secrets in name order after ``cursor``."""
        query = sql.SQL(
            "SELECT secret, value FROM {s}.tokengate_kms_secrets"
            " WHERE name = %s AND purpose = %s AND secret > %s ORDER BY secret LIMIT %s"
        ).format(s=self._schema)

        async def scan(conn: psycopg.AsyncConnection[_Row]) -> list[_Row]:
            cur = await conn.execute(query, (self._name, purpose, cursor or "", limit))
            return await cur.fetchall()

        rows = await self._run("scan", scan)
        items = [(str(r[0]), bytes(_bytes(r[1]))) for r in rows]
        return items, (items[-1][0] if len(items) == limit else None)

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
                raise KeyringError(f"kms: keyring store {self.description} failed: {what}") from e


def _int(raw: object) -> int:
    if not isinstance(raw, int):
        raise KeyringError("kms: keyring store returned a non-integer")
    return raw


def _bytes(raw: object) -> bytes | memoryview:
    if not isinstance(raw, bytes | memoryview):
        raise KeyringError("kms: keyring store returned non-binary data")
    return raw
