"""SqliteVault (``sqlite:``): the embedded default, one file shared by the workers of a host.

Rules:
- WAL journal and ``synchronous=FULL``: a ``put_new`` that returned has been
  fsynced, so the record survives a crash or power cut.
- Every call is one transaction on the store's own thread (never on the event
  loop): one round trip per batch, whatever its size.
- Writes take ``BEGIN IMMEDIATE``, the file's single write lock across every
  process on the host, and wait at most ``timeout`` for it; a longer wait, or
  any SQLite error, is :class:`~vault.errors.VaultUnavailable` and rolls the
  whole transaction back (a batch is all or nothing).
- An id whose record has expired is free: ``put_new`` replaces that record,
  otherwise a deterministic token whose record expired could never be stored
  again. Expired rows are purged by :meth:`SqliteVault.purge_expired`.
- The schema is created on open; ``user_version`` names it and an unknown one
  is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from vault.errors import VaultConfigError, VaultUnavailable
from vault.store import Durability, StoredRecord
from vault.store_blob import check_rewrap, first_occurrences, is_live

SCHEMA_VERSION: Final = 1
_DDL: Final = """
CREATE TABLE IF NOT EXISTS tg_vault (
    id BLOB PRIMARY KEY,
    key_version INTEGER NOT NULL,
    outer_ct BLOB NOT NULL,
    meta BLOB NOT NULL,
    expires INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tg_vault_expires ON tg_vault (expires) WHERE expires IS NOT NULL;
"""
_INSERT: Final = (
    "INSERT INTO tg_vault (id, key_version, outer_ct, meta, expires) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET key_version = excluded.key_version,"
    " outer_ct = excluded.outer_ct, meta = excluded.meta, expires = excluded.expires"
    " WHERE tg_vault.expires IS NOT NULL AND tg_vault.expires <= ? RETURNING id"
)
_SELECT_IN: Final = (
    "SELECT id, key_version, outer_ct, meta, expires FROM tg_vault"
    " WHERE id IN ({marks}) AND (expires IS NULL OR expires > ?)"
)
_IN_CHUNK: Final = 500  # ids per SELECT (SQLite's default limit is 32766 parameters)
_DELETE_ONE: Final = "DELETE FROM tg_vault WHERE id = ? RETURNING expires"
_SCAN: Final = (
    "SELECT id, key_version, outer_ct, meta, expires FROM tg_vault"
    " WHERE id > ? AND (expires IS NULL OR expires > ?) ORDER BY id LIMIT ?"
)
_REPLACE: Final = (
    "UPDATE tg_vault SET key_version = ?, outer_ct = ? WHERE id = ? AND key_version = ?"
    " AND outer_ct = ? AND meta = ? AND (expires IS NULL OR expires > ?)"
)

type _Row = tuple[bytes, int, bytes, bytes, int | None]


class SqliteVault:
    """Vault records in one SQLite file (WAL), shared by the processes of one host."""

    def __init__(
        self, path: Path, *, timeout: float = 5.0, now: Callable[[], float] = time.time
    ) -> None:
        self._path = path
        self._timeout = timeout
        self._now = now
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def name(self) -> str:
        """``sqlite``."""
        return "sqlite"

    async def open(self) -> None:
        """Start the thread, open the file, set WAL and FULL sync, create the schema."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tg-vault-sqlite")
        try:
            await self._call("open", self._open)
        except BaseException:
            await self.close()
            raise

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=True
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise VaultConfigError(f"vault: sqlite: {self._path} cannot use WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, SCHEMA_VERSION):
                conn.execute("ROLLBACK")
                raise VaultConfigError(f"vault: sqlite: unknown schema version {version}")
            for statement in filter(str.strip, _DDL.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
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
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await asyncio.wrap_future(executor.submit(_close))
        finally:
            executor.shutdown(wait=False)

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        """Insert the absent (or expired) ids in one durable transaction."""
        batch = list(records)
        first = first_occurrences(batch)
        now = self._now()

        def _put(conn: sqlite3.Connection) -> set[bytes]:
            inserted: set[bytes] = set()
            with _write(conn):
                for i in first.values():
                    r = batch[i]
                    row = conn.execute(
                        _INSERT, (r.id, r.key_version, r.outer, r.meta, r.expires, now)
                    ).fetchone()
                    if row is not None:
                        inserted.add(r.id)
            return inserted

        inserted = await self._run("put_new", _put)
        return [first[r.id] == i and r.id in inserted for i, r in enumerate(batch)]

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        """The live records among ``ids``."""
        wanted = list(dict.fromkeys(ids))
        now = self._now()

        def _get(conn: sqlite3.Connection) -> list[_Row]:
            rows: list[_Row] = []
            # One statement per chunk (SQLite caps bound parameters), one thread hop.
            for i in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[i : i + _IN_CHUNK]
                sql = _SELECT_IN.format(marks=",".join("?" * len(chunk)))
                rows += conn.execute(sql, (*chunk, now)).fetchall()
            return rows

        return {row[0]: _record(row) for row in await self._run("get_many", _get)}

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        """Delete records; the number of live ones that existed (expired ones go too)."""
        wanted = list(dict.fromkeys(ids))
        now = self._now()

        def _delete(conn: sqlite3.Connection) -> int:
            count = 0
            with _write(conn):
                for record_id in wanted:
                    for (expires,) in conn.execute(_DELETE_ONE, (record_id,)).fetchall():
                        count += is_live(expires, now)
            return count

        return await self._run("delete_many", _delete)

    async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
        """Up to ``limit`` live records with id > ``after``, in id order."""
        now = self._now()

        def _scan(conn: sqlite3.Connection) -> list[_Row]:
            return conn.execute(
                _SCAN,
                (after or b"", now, limit),
            ).fetchall()

        return [_record(row) for row in await self._run("scan", _scan)]

    async def replace_outer(self, old: StoredRecord, new: StoredRecord) -> bool:
        """One conditional UPDATE: swap key_version/outer iff the row still equals ``old``."""
        check_rewrap(old, new)
        now = self._now()

        def _replace(conn: sqlite3.Connection) -> bool:
            with _write(conn):
                cur = conn.execute(
                    _REPLACE,
                    (new.key_version, new.outer, old.id, old.key_version, old.outer, old.meta,
                     now),
                )  # fmt: skip
                return cur.rowcount == 1

        return await self._run("replace_outer", _replace)

    async def purge_expired(self, *, limit: int = 10_000) -> int:
        """Delete up to ``limit`` expired rows; the number deleted."""
        now = self._now()

        def _purge(conn: sqlite3.Connection) -> int:
            with _write(conn):
                return conn.execute(
                    "DELETE FROM tg_vault WHERE id IN (SELECT id FROM tg_vault"
                    " WHERE expires IS NOT NULL AND expires <= ? LIMIT ?)",
                    (now, limit),
                ).rowcount

        return await self._run("purge_expired", _purge)

    async def durability(self) -> Durability:
        """Durable when the connection runs WAL with synchronous FULL (or EXTRA)."""

        def _check(conn: sqlite3.Connection) -> tuple[str, int]:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            return mode, int(conn.execute("PRAGMA synchronous").fetchone()[0])

        mode, sync = await self._run("durability", _check)
        if sync < 2:
            return Durability(False, f"sqlite: synchronous is {sync}, not full")
        return Durability(True, f"sqlite: journal_mode={mode}, synchronous=full")

    async def _run[T](self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        def _with_conn() -> T:
            if self._conn is None:
                raise VaultUnavailable("vault: sqlite: store is closed")
            return fn(self._conn)

        return await self._call(what, _with_conn)

    async def _call[T](self, what: str, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise VaultUnavailable("vault: sqlite: store is not open")
        future = asyncio.wrap_future(self._executor.submit(fn))
        try:
            # busy_timeout bounds lock waits; this bounds everything else (a stuck disk).
            async with asyncio.timeout(self._timeout * 2 + 1):
                return await future
        except TimeoutError:
            raise VaultUnavailable(f"vault: sqlite: {what} timed out") from None
        except sqlite3.Error as e:
            reason = "database is locked" if _is_busy(e) else type(e).__name__
            raise VaultUnavailable(f"vault: sqlite: {what} failed ({reason})") from e


class _write:
    """One ``BEGIN IMMEDIATE`` transaction, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self._conn.execute("COMMIT")
        finally:
            # After an error (or a failed COMMIT) nothing of the batch may stay pending.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")


def _is_busy(e: sqlite3.Error) -> bool:
    return getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _record(row: _Row) -> StoredRecord:
    record_id, version, outer, meta, expires = row
    return StoredRecord(id=record_id, key_version=version, outer=outer, meta=meta, expires=expires)
