"""SqliteSessionStore (``sqlite:``): the embedded default for many workers on one host.

All SQLite calls run on one dedicated thread per store (never on the event
loop), each call one short transaction: a round trip. Writes use
``BEGIN IMMEDIATE``, which takes the database's single write lock across every
process on the host; that transaction is the per-session refresh lock. The
per-request check is one SELECT (see :mod:`proxy.sessions.sqlite_schema`).
Expired rows are purged by :meth:`purge_expired`, which ``create`` runs at most
every five minutes per process.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from proxy.sessions import sqlite_guards as g
from proxy.sessions import sqlite_schema as q
from proxy.sessions import sqlite_tx as tx
from proxy.sessions.batch import CheckBatcher
from proxy.sessions.codec import encode_identity
from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected, SessionStoreUnavailable
from proxy.sessions.model import NewSession, RefreshResult, Session, SessionGrant
from proxy.sessions.refresh import presented_hash
from proxy.sessions.rules import Marks, live, valid_times
from proxy.sessions.sqlite_guards import write as _write
from proxy.sessions.store import (
    StoreSettings,
    check_namespace,
    clock,
    digest,
    start_session,
    subject_key,
)
from proxy.sessions.touch import TouchLimiter

_PURGE_EVERY: Final = 300.0


class SqliteSessionStore:
    """Sessions in one SQLite file (WAL), shared by the processes of one host."""

    supports_multiple_workers = True

    def __init__(self, path: Path, settings: StoreSettings | None = None) -> None:
        self._path = path
        self._settings = settings or StoreSettings()
        self._touch = TouchLimiter(self._settings.touch_interval)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._round_trips = 0
        self._last_purge = 0.0
        self._checks: CheckBatcher[str, tuple[object, ...] | None] = CheckBatcher(
            self._check_many, name="sessions-sqlite-check"
        )

    @property
    def round_trips(self) -> int:
        """Transactions run so far (one thread hop each)."""
        return self._round_trips

    @property
    def description(self) -> str:
        """``sqlite:`` and the file."""
        return f"sqlite:{self._path}"

    async def open(self) -> None:
        """Start the thread, open the file, create the schema."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tg-sessions-db")
        busy = max(self._settings.lock_ttl, self._settings.timeout)

        def _open() -> None:
            self._conn = q.connect(self._path, busy_timeout=busy)

        await self._submit("open", _open)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        if self._executor is None:
            return
        await self._checks.close()

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await self._submit("close", _close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def create(self, grant: SessionGrant, *, now: float | None = None) -> NewSession:
        """Insert the session and its first token in one transaction."""
        t = clock(now)
        new, family = start_session(grant, self._settings, t)
        s = new.session

        def _create(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.execute(
                    "INSERT INTO tg_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    (s.sid, s.sub, subject_key(s.sub), s.family_id, encode_identity(s),
                     s.created, s.last_seen, s.absolute_expiry, s.idle_timeout, family.current),
                )  # fmt: skip
                conn.execute(
                    "INSERT INTO tg_refresh_tokens VALUES (?, ?, ?, ?)",
                    (family.current, s.sid, s.family_id, s.absolute_expiry),
                )

        await self._run("create", _create)
        self._touch.record(s.sid, t)
        if t - self._last_purge >= _PURGE_EVERY:
            await self.purge_expired(now=t)
        return new

    async def get(self, sid: str, *, now: float | None = None) -> Session | None:
        """The session if valid at ``now``."""
        t = clock(now)

        def _get(conn: sqlite3.Connection) -> Session | None:
            row = conn.execute(q.SELECT_SESSION, (sid,)).fetchone()
            if row is None:
                return None
            session, _, marks = q.session_from_row(sid, row)
            return session if live(session, marks, t) else None

        session = await self._run("get", _get)
        if session is not None:
            self._touch.record(sid, session.last_seen)
        return session

    async def touch(self, sid: str, *, now: float | None = None) -> bool:
        """One conditional UPDATE when a write is due."""
        t = clock(now)
        if not self._touch.due(sid, t):
            return False

        def _touch(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE tg_sessions SET last_seen = ? WHERE sid = ? AND last_seen < ?"
                " AND absolute_expiry > ? AND last_seen + idle_timeout > ?",
                (t, sid, t, t, t),
            )
            return cur.rowcount == 1

        written = await self._run("touch", _touch)
        if written:
            self._touch.record(sid, t)
        return written

    async def rotate(self, refresh_token: str, *, now: float | None = None) -> RefreshResult:
        """The rotation rule inside one write transaction (the cross-process lock)."""
        t, presented = clock(now), presented_hash(refresh_token)
        grace = self._settings.refresh_grace

        result = await self._run("rotate", lambda c: tx.rotate(c, presented, now=t, grace=grace))
        if isinstance(result, RefreshRejected):
            if isinstance(result, RefreshReuseDetected):
                self._touch.forget(result.sid)
            raise result
        self._touch.record(result.session.sid, result.session.last_seen)
        return result

    async def revoke(self, sid: str) -> bool:
        """Delete the session (durably); its tokens then lead nowhere."""

        def _revoke(conn: sqlite3.Connection) -> bool:
            with _write(conn, durable=True):
                return conn.execute("DELETE FROM tg_sessions WHERE sid = ?", (sid,)).rowcount == 1

        self._touch.forget(sid)
        return await self._run("revoke", _revoke)

    async def revoke_user(self, sub: str, *, now: float | None = None) -> int:
        """Set the user's mark and delete the user's sessions, in one transaction."""
        t, key = clock(now), subject_key(sub)

        def _revoke_user(conn: sqlite3.Connection) -> int:
            with _write(conn, durable=True):
                conn.execute(q.SET_MARK, (q.user_scope(key), t))
                cur = conn.execute(
                    "DELETE FROM tg_sessions WHERE subject_key = ? AND created <= ?", (key, t)
                )
                return cur.rowcount

        return await self._run("revoke_user", _revoke_user)

    async def revoke_all(self, *, now: float | None = None) -> None:
        """Move the global epoch (one row)."""
        t = clock(now)

        def _revoke_all(conn: sqlite3.Connection) -> None:
            with _write(conn, durable=True):
                conn.execute(q.SET_MARK, (q.GLOBAL_SCOPE, t))

        await self._run("revoke_all", _revoke_all)

    async def is_revoked(
        self, sid: str, sub: str, issued_at: float, *, now: float | None = None
    ) -> bool:
        """One SELECT: the session's clocks, the user's mark and the epoch.

        The checks of one event-loop turn share one thread hop
        (:mod:`proxy.sessions.batch`: each still reads after its request arrived).
        """
        t = clock(now)
        row = await self._checks.ask(sid)
        if row is None or row[0] != sub:
            return True
        created, seen, absolute, idle = (q.as_float(v) for v in row[1:5])
        self._touch.record(sid, seen)
        marks = Marks(user=q.as_opt_float(row[5]), everyone=q.as_opt_float(row[6]))
        return not valid_times(
            created=created,
            last_seen=seen,
            absolute_expiry=absolute,
            idle_timeout=idle,
            issued_at=issued_at,
            marks=marks,
            now=t,
        )

    async def _check_many(self, sids: Sequence[str]) -> list[tuple[object, ...] | None]:
        """SELECT_CHECK for each sid of a batch, in one thread hop."""

        def _check(conn: sqlite3.Connection) -> list[tuple[object, ...] | None]:
            return [conn.execute(q.SELECT_CHECK, (sid,)).fetchone() for sid in sids]

        return await self._run("check", _check)

    async def list_sessions(self, sub: str, *, now: float | None = None) -> list[Session]:
        """The user's valid sessions, oldest first."""
        t, key = clock(now), subject_key(sub)

        def _list(conn: sqlite3.Connection) -> list[Session]:
            sids = conn.execute(
                "SELECT sid FROM tg_sessions WHERE subject_key = ? ORDER BY created", (key,)
            ).fetchall()
            out = []
            for (sid,) in sids:
                row = conn.execute(q.SELECT_SESSION, (sid,)).fetchone()
                if row is not None:
                    session, _, marks = q.session_from_row(str(sid), row)
                    if live(session, marks, t):
                        out.append(session)
            return out

        return await self._run("list", _list)

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Delete dead sessions, tokens, replay entries, counters and stale marks."""
        t = clock(now)
        self._last_purge = t
        old = t - self._settings.absolute_lifetime

        return await self._run("purge", lambda c: tx.purge(c, now=t, oldest_mark=old))

    async def first_use(
        self, namespace: str, value: str, ttl: float, *, now: float | None = None
    ) -> bool:
        """Record ``value``; False if it was already recorded and has not expired."""
        if ttl <= 0:
            raise ValueError("sessions: replay ttl must be positive")
        ns, d, t = check_namespace(namespace), digest(value), clock(now)
        return await self._run("first_use", lambda c: g.first_use(c, ns, d, t, ttl))

    async def incr_failures(
        self,
        key: str,
        window: float,
        *,
        lock_after: int | None = None,
        lock_for: float = 0.0,
        now: float | None = None,
    ) -> int:
        """Fixed-window failure count; locks ``key`` once it reaches ``lock_after``."""
        if window <= 0:
            raise ValueError("sessions: failure window must be positive")
        k, t = digest(key), clock(now)
        return await self._run(
            "failures",
            lambda c: g.incr_failures(
                c, k, now=t, window=window, lock_after=lock_after, lock_for=lock_for
            ),
        )

    async def reset(self, key: str, *, unlock: bool = False) -> None:
        """Forget the failure count (and the lock)."""
        k = digest(key)
        await self._run("failures", lambda c: g.reset(c, k, unlock=unlock))

    async def locked_until(self, key: str, *, now: float | None = None) -> float | None:
        """The end of the lock on ``key`` if it is still locked."""
        k, t = digest(key), clock(now)
        return await self._run("failures", lambda c: g.locked_until(c, k, t))

    async def _run[T](self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        def _with_conn() -> T:
            if self._conn is None:
                raise SessionStoreUnavailable("sessions: sqlite store is not open")
            return fn(self._conn)

        return await self._submit(what, _with_conn)

    async def _submit[T](self, what: str, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise SessionStoreUnavailable("sessions: sqlite store is not open")

        def _call() -> T:
            try:
                return fn()
            except sqlite3.Error as e:
                raise SessionStoreUnavailable(f"sessions: sqlite store failed: {what}") from e

        self._round_trips += 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, _call)
