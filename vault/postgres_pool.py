"""A small pool of autocommit psycopg connections for :class:`vault.postgres_store.PostgresVault`.

At most ``size`` connections, opened lazily, each with a libpq connect timeout
and a server-side ``statement_timeout`` (added to any ``options`` the DSN
gives). A connection goes back to the pool only after a clean use; one that
failed or was interrupted is closed, so a broken socket never serves a second
call.

Timeouts: psycopg answers a cancelled query by asking the server to cancel it
and waiting up to seconds for that, which against a frozen server would hold
the caller far beyond its timeout. So :meth:`PgPool.run` runs each call in its
own task and, on timeout, fails the caller at once and leaves the task to
finish its cleanup in the background (kept referenced, cancelled again on
close).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
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
        self._abandoned: set[asyncio.Task[object]] = set()

    async def run[T](self, op: Callable[[Connection], Awaitable[T]], *, name: str) -> T:
        """``op`` on a pooled connection; TimeoutError after ``timeout`` without waiting on."""

        async def _op() -> T:
            async with self._connection() as conn:
                return await op(conn)

        task = asyncio.create_task(_op(), name=f"tg-vault-pg-{name}")
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise TimeoutError
        return task.result()

    async def close(self) -> None:
        """Close every idle connection; interrupt abandoned calls (bounded wait)."""
        for task in list(self._abandoned):
            task.cancel()  # a second cancel makes psycopg drop the connection at once
        if self._abandoned:
            await asyncio.wait(self._abandoned, timeout=self._timeout)
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    def _abandon(self, task: asyncio.Task[object]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[object]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller already failed closed

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
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
                    with contextlib.suppress(psycopg.Error):
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
