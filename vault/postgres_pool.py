"""A small pool of autocommit psycopg connections for :class:`vault.postgres_store.PostgresVault`.

At most ``size`` connections, opened lazily, each with a libpq connect timeout
and a server-side ``statement_timeout`` (added to any ``options`` the DSN
gives). A connection goes back to the pool only after a clean use; one that
failed or was interrupted (a timeout cancels the task) is closed, so a broken
socket never serves a second call.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

type Row = tuple[object, ...]
type Connection = psycopg.AsyncConnection[Row]


class PgPool:
    """Up to ``size`` autocommit connections to ``conninfo``."""

    def __init__(self, conninfo: str, *, size: int, timeout: float) -> None:
        self._conninfo = conninfo
        self._timeout = timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for one call; closed instead of reused if the call did not finish."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            clean = False
            try:
                yield conn
                clean = True
            finally:
                if clean and not conn.closed and _idle(conn):
                    self._idle.append(conn)
                else:
                    await conn.close()

    async def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def _connect(self) -> Connection:
        ms = int(self._timeout * 1000)
        given = str(conninfo_to_dict(self._conninfo).get("options") or "")
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(2, math.ceil(self._timeout)),
            options=f"{given} -c statement_timeout={ms} -c lock_timeout={ms}".strip(),
        )


def _idle(conn: Connection) -> bool:
    return conn.info.transaction_status == TransactionStatus.IDLE
