"""SqliteBrokerStore (``sqlite:PATH``): the broker's rows in the KMS's embedded database.

Every write runs under ``BEGIN IMMEDIATE`` (:class:`tee.db.SqliteRunner`), the
file's write lock across processes, so "take this nonce" and "release this
grant" are atomic even with several KMS processes on one host.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kms import broker_sql as q
from kms.broker_store import Grant, Session, grant_from_row, grant_row, session_from_row
from tee.db import SqliteRunner

WIPED = b""


class SqliteBrokerStore:
    """Nonces, sessions and grants in a SQLite file."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self._db = SqliteRunner(path, ddl=q.SQLITE_DDL, timeout=timeout)

    async def open(self) -> None:
        """Create the file and tables; idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close the connection; idempotent."""
        await self._db.close()

    async def add_nonce(
        self, tee_id: str, nonce: bytes, *, expires_at: int, now: int, limit: int
    ) -> bool:
        """Store a nonce for ``tee_id``; False when ``limit`` unexpired ones are pending."""

        def _add(conn: sqlite3.Connection) -> bool:
            (pending,) = conn.execute(q.COUNT_NONCES, (tee_id, now)).fetchone()
            if int(pending) >= limit:
                return False
            conn.execute(q.ADD_NONCE, (nonce, tee_id, expires_at))
            return True

        return await self._db.write(_add)

    async def take_nonce(self, tee_id: str, nonce: bytes, *, now: int) -> bool:
        """Consume the nonce if issued for ``tee_id`` and unexpired (at most once)."""

        def _take(conn: sqlite3.Connection) -> bool:
            return conn.execute(q.TAKE_NONCE, (nonce, tee_id, now)).fetchone() is not None

        return await self._db.write(_take)

    async def add_session(self, session: Session) -> None:
        """Store a new session."""

        def _add(conn: sqlite3.Connection) -> None:
            conn.execute(
                q.ADD_SESSION,
                (session.digest, session.tee_id, session.public_key, session.expires_at),
            )

        await self._db.write(_add)

    async def session(self, digest: bytes, *, now: int) -> Session | None:
        """The live session with this token digest."""

        def _get(conn: sqlite3.Connection) -> tuple[object, ...] | None:
            row: tuple[object, ...] | None = conn.execute(q.GET_SESSION, (digest, now)).fetchone()
            return row

        row = await self._db.read(_get)
        return None if row is None else session_from_row(digest, row)

    async def has_session(self, tee_id: str, public_key: bytes, *, now: int) -> bool:
        """Whether a live session binds exactly ``(tee_id, public_key)``."""

        def _has(conn: sqlite3.Connection) -> bool:
            return conn.execute(q.HAS_SESSION, (tee_id, public_key, now)).fetchone() is not None

        return await self._db.read(_has)

    async def add_grant(self, grant: Grant) -> None:
        """Store a new grant."""

        def _add(conn: sqlite3.Connection) -> None:
            conn.execute(q.ADD_GRANT, grant_row(grant))

        await self._db.write(_add)

    async def grant(self, grant_id: str) -> Grant | None:
        """The grant, None if unknown."""

        def _get(conn: sqlite3.Connection) -> tuple[object, ...] | None:
            row: tuple[object, ...] | None = conn.execute(q.GET_GRANT, (grant_id,)).fetchone()
            return row

        row = await self._db.read(_get)
        return None if row is None else grant_from_row(row)

    async def claim(self, grant_id: str, *, now: int) -> bytes | None:
        """Release the grant once: its sealed key to the one caller whose update matched."""

        def _claim(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(q.LOCK_GRANT_KEY, (grant_id,)).fetchone()
            if row is None:
                return None
            if conn.execute(q.CLAIM_GRANT, (WIPED, grant_id, now)).rowcount != 1:
                return None
            return bytes(row[0])

        return await self._db.write(_claim)

    async def revoke(self, tee_id: str, public_key: bytes | None, *, now: int) -> tuple[int, int]:
        """Revoke live sessions and unreleased grants of ``tee_id`` (and key)."""

        def _revoke(conn: sqlite3.Connection) -> tuple[int, int]:
            if public_key is None:
                sessions = conn.execute(q.REVOKE_SESSIONS, (tee_id, now)).rowcount
                grants = conn.execute(q.REVOKE_GRANTS, (WIPED, tee_id, now)).rowcount
            else:
                sessions = conn.execute(
                    q.REVOKE_SESSIONS_OF_KEY, (tee_id, now, public_key)
                ).rowcount
                grants = conn.execute(
                    q.REVOKE_GRANTS_OF_KEY, (WIPED, tee_id, now, public_key)
                ).rowcount
            return sessions, grants

        return await self._db.write(_revoke)

    async def purge(self, *, now: int, keep: int) -> None:
        """Drop expired nonces; wipe expired grants' keys; drop rows expired ``keep`` s ago."""

        def _purge(conn: sqlite3.Connection) -> None:
            conn.execute(q.PURGE_NONCES, (now,))
            conn.execute(q.WIPE_EXPIRED_KEYS, (WIPED, now, WIPED))
            conn.execute(q.PURGE_GRANTS, (now - keep,))
            conn.execute(q.PURGE_SESSIONS, (now - keep,))

        await self._db.write(_purge)
