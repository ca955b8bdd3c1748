"""The database the TEE registry and the KMS broker keep their rows in: SQLite or PostgreSQL.

Chosen by URI: ``sqlite:PATH`` (relative paths under the data dir; the
embedded default) or ``postgresql://...`` (shared by several KMS replicas).
Each runner executes one callable per call, inside one transaction:

- :class:`SqliteRunner`: one connection on its own thread (never the event
  loop), WAL and ``synchronous=FULL``; writes take ``BEGIN IMMEDIATE``, the
  file's write lock across processes, so a read-check-update inside one call
  is atomic.
- :class:`PgRunner`: up to ``size`` connections, each with a connect timeout,
  a server-side ``statement_timeout`` and ``search_path`` set to the
  configured schema (created if absent; DDL runs under an advisory lock so
  replicas starting together do not race).

Any database error or timeout is :class:`~tee.errors.StoreUnavailable`
(503): callers fail closed. A connection that failed is dropped, never reused.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, LiteralString
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from tee.errors import RegistryError, StoreUnavailable

type PgConnection = psycopg.AsyncConnection[tuple[object, ...]]
SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def sqlite_file(uri: str, data_dir: Path) -> Path:
    """The file of a ``sqlite:PATH`` URI; relative paths live under ``data_dir``."""
    parts = urlsplit(uri)
    if parts.scheme != "sqlite" or parts.netloc not in ("", "localhost") or parts.query:
        raise RegistryError("store: sqlite: names a local file, without host or options")
    if not parts.path or parts.path.endswith("/"):
        raise RegistryError("store: sqlite: needs a file name")
    path = Path(unquote(parts.path))
    return path if path.is_absolute() else data_dir / path


def is_postgres(uri: str) -> bool:
    """Whether ``uri`` names a PostgreSQL database."""
    return urlsplit(uri).scheme in ("postgresql", "postgres")


class SqliteRunner:
    """One SQLite connection on a private thread; every call is one transaction."""

    def __init__(self, path: Path, *, ddl: LiteralString, timeout: float = 5.0) -> None:
        self._path = path
        self._ddl = ddl
        self._timeout = timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Create the file (0600 directory) and the tables; idempotent."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tg-tee-sqlite")
        await self._submit(self._open)

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(self._ddl)  # CREATE ... IF NOT EXISTS: safe across processes
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Close the connection and stop the thread; idempotent."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def _close() -> None:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

        try:
            await asyncio.wrap_future(executor.submit(_close))
        finally:
            executor.shutdown(wait=False)

    async def read[T](self, op: Callable[[sqlite3.Connection], T]) -> T:
        """``op`` in a read transaction."""
        return await self._submit(lambda: self._transaction(op, "BEGIN"))

    async def write[T](self, op: Callable[[sqlite3.Connection], T]) -> T:
        """``op`` in a write transaction holding the file's write lock."""
        return await self._submit(lambda: self._transaction(op, "BEGIN IMMEDIATE"))

    def _transaction[T](self, op: Callable[[sqlite3.Connection], T], begin: str) -> T:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable("store: the database is closed")
        conn.execute(begin)
        try:
            result = op(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _submit[T](self, fn: Callable[[], T]) -> T:
        executor = self._executor
        if executor is None:
            raise StoreUnavailable("store: the database is closed")
        try:
            return await asyncio.wrap_future(executor.submit(fn))
        except sqlite3.Error as e:
            raise StoreUnavailable(f"store: sqlite: {type(e).__name__}") from e


class PgRunner:
    """Up to ``size`` PostgreSQL connections in ``schema``; every call is one transaction."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str,
        ddl: LiteralString,
        size: int = 4,
        timeout: float = 5.0,
    ) -> None:
        if not SCHEMA_RE.fullmatch(schema):
            raise RegistryError("store: the schema name must match [a-z_][a-z0-9_]{0,62}")
        self._conninfo = conninfo
        self._schema = schema
        self._ddl = ddl
        self._timeout = timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[PgConnection] = []

    async def open(self) -> None:
        """Create the schema and the tables (under an advisory lock); keep the connection."""

        async def _ddl(conn: PgConnection) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tokengate-tee-ddl'))")
            schema = sql.Identifier(self._schema)
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            await conn.execute(sql.SQL(self._ddl))

        await self.run(_ddl)

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def run[T](self, op: Callable[[PgConnection], Awaitable[T]]) -> T:
        """``op`` inside one transaction; StoreUnavailable on any database error or timeout."""
        async with self._slots:
            conn: PgConnection | None = None
            try:
                async with asyncio.timeout(self._timeout):
                    conn = self._idle.pop() if self._idle else await self._connect()
                    async with conn.transaction():
                        result = await op(conn)
            except (psycopg.Error, TimeoutError, OSError) as e:
                if conn is not None:
                    await _discard(conn)
                raise StoreUnavailable(f"store: postgresql: {type(e).__name__}") from e
            except BaseException:
                if conn is not None:
                    await _discard(conn)
                raise
            self._idle.append(conn)
            return result

    async def _connect(self) -> PgConnection:
        ms = int(self._timeout * 1000)
        conn: PgConnection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout))
        )
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(ms)))
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        return conn


async def _discard(conn: PgConnection) -> None:
    try:
        await conn.close()
    except psycopg.Error:
        return  # already broken: nothing left to release
