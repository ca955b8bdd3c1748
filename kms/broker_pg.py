"""PostgresBrokerStore (``postgresql://``): the broker's rows shared by several KMS replicas.

The same statements as SQLite (:mod:`kms.broker_sql`). Release is atomic
across replicas: the grant row is locked (``SELECT ... FOR UPDATE``) and the
``UPDATE ... WHERE released = 0`` decides the one winner; a nonce is taken by
one ``DELETE ... RETURNING``. Pending nonces per TEE are counted under a
transaction-scoped advisory lock on the TEE id, so the cap holds across
replicas.
"""

from __future__ import annotations

from kms import broker_sql as q
from kms.broker_store import Grant, Session, grant_from_row, grant_row, session_from_row
from tee.db import PgConnection, PgRunner

WIPED = b""


class PostgresBrokerStore:
    """Nonces, sessions and grants in PostgreSQL."""

    def __init__(
        self, conninfo: str, *, schema: str = "tokengate_kms", timeout: float = 5.0
    ) -> None:
        self._db = PgRunner(conninfo, schema=schema, ddl=q.PG_DDL, timeout=timeout)

    async def open(self) -> None:
        """Create the schema and tables; idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close the connections."""
        await self._db.close()

    async def add_nonce(
        self, tee_id: str, nonce: bytes, *, expires_at: int, now: int, limit: int
    ) -> bool:
        """Store a nonce for ``tee_id``; False when ``limit`` unexpired ones are pending."""

        async def _add(conn: PgConnection) -> bool:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('tokengate-kms-nonce:' || %s))", (tee_id,)
            )
            cur = await conn.execute(q.pg(q.COUNT_NONCES), (tee_id, now))
            row = await cur.fetchone()
            if row is None or int(str(row[0])) >= limit:
                return False
            await conn.execute(q.pg(q.ADD_NONCE), (nonce, tee_id, expires_at))
            return True

        return await self._db.run(_add)

    async def take_nonce(self, tee_id: str, nonce: bytes, *, now: int) -> bool:
        """Consume the nonce if issued for ``tee_id`` and unexpired (at most once)."""

        async def _take(conn: PgConnection) -> bool:
            cur = await conn.execute(q.pg(q.TAKE_NONCE), (nonce, tee_id, now))
            return await cur.fetchone() is not None

        return await self._db.run(_take)

    async def add_session(self, session: Session) -> None:
        """Store a new session."""

        async def _add(conn: PgConnection) -> None:
            await conn.execute(
                q.pg(q.ADD_SESSION),
                (session.digest, session.tee_id, session.public_key, session.expires_at),
            )

        await self._db.run(_add)

    async def session(self, digest: bytes, *, now: int) -> Session | None:
        """The live session with this token digest."""

        async def _get(conn: PgConnection) -> tuple[object, ...] | None:
            cur = await conn.execute(q.pg(q.GET_SESSION), (digest, now))
            return await cur.fetchone()

        row = await self._db.run(_get)
        return None if row is None else session_from_row(digest, row)

    async def has_session(self, tee_id: str, public_key: bytes, *, now: int) -> bool:
        """Whether a live session binds exactly ``(tee_id, public_key)``."""

        async def _has(conn: PgConnection) -> bool:
            cur = await conn.execute(q.pg(q.HAS_SESSION), (tee_id, public_key, now))
            return await cur.fetchone() is not None

        return await self._db.run(_has)

    async def add_grant(self, grant: Grant) -> None:
        """Store a new grant."""

        async def _add(conn: PgConnection) -> None:
            await conn.execute(q.pg(q.ADD_GRANT), grant_row(grant))

        await self._db.run(_add)

    async def grant(self, grant_id: str) -> Grant | None:
        """The grant, None if unknown."""

        async def _get(conn: PgConnection) -> tuple[object, ...] | None:
            cur = await conn.execute(q.pg(q.GET_GRANT), (grant_id,))
            return await cur.fetchone()

        row = await self._db.run(_get)
        return None if row is None else grant_from_row(row)

    async def claim(self, grant_id: str, *, now: int) -> bytes | None:
        """Release the grant once: its sealed key to the one caller whose update matched."""

        async def _claim(conn: PgConnection) -> bytes | None:
            cur = await conn.execute(q.pg(q.LOCK_GRANT_KEY) + " FOR UPDATE", (grant_id,))
            row = await cur.fetchone()
            if row is None:
                return None
            cur = await conn.execute(q.pg(q.CLAIM_GRANT), (WIPED, grant_id, now))
            if cur.rowcount != 1:
                return None
            key = row[0]
            return bytes(key) if isinstance(key, bytes | memoryview) else None

        return await self._db.run(_claim)

    async def revoke(self, tee_id: str, public_key: bytes | None, *, now: int) -> tuple[int, int]:
        """Revoke live sessions and unreleased grants of ``tee_id`` (and key)."""

        async def _revoke(conn: PgConnection) -> tuple[int, int]:
            if public_key is None:
                s = await conn.execute(q.pg(q.REVOKE_SESSIONS), (tee_id, now))
                g = await conn.execute(q.pg(q.REVOKE_GRANTS), (WIPED, tee_id, now))
            else:
                s = await conn.execute(q.pg(q.REVOKE_SESSIONS_OF_KEY), (tee_id, now, public_key))
                g = await conn.execute(
                    q.pg(q.REVOKE_GRANTS_OF_KEY), (WIPED, tee_id, now, public_key)
                )
            return s.rowcount, g.rowcount

        return await self._db.run(_revoke)

    async def purge(self, *, now: int, keep: int) -> None:
        """Drop expired nonces; wipe expired grants' keys; drop rows expired ``keep`` s ago."""

        async def _purge(conn: PgConnection) -> None:
            await conn.execute(q.pg(q.PURGE_NONCES), (now,))
            await conn.execute(q.pg(q.WIPE_EXPIRED_KEYS), (WIPED, now, WIPED))
            await conn.execute(q.pg(q.PURGE_GRANTS), (now - keep,))
            await conn.execute(q.pg(q.PURGE_SESSIONS), (now - keep,))

        await self._db.run(_purge)
