"""MemorySessionStore (``memory:``): everything in this process's dictionaries.

For tests and a single-worker ``tokengate serve`` only: a second worker would
not see this worker's sessions or revocations, so the factory refuses it when
``workers > 1`` (``supports_multiple_workers`` is False) and production mode
refuses it outright. It applies exactly the rules of the other stores
(:mod:`proxy.sessions.rules`, :mod:`proxy.sessions.refresh`), with an
:class:`asyncio.Lock` per session around a refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Final

from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected
from proxy.sessions.model import NewSession, RefreshResult, Session, SessionGrant
from proxy.sessions.refresh import Family, Outcome, decide, new_refresh_token, presented_hash
from proxy.sessions.rules import Marks, live, valid_times
from proxy.sessions.store import (
    StoreSettings,
    check_namespace,
    clock,
    digest,
    start_session,
    subject_key,
)
from proxy.sessions.touch import TouchLimiter

_PURGE_EVERY: Final = 60.0


@dataclass(slots=True)
class _Record:
    session: Session
    family: Family


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, dropped once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the body."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class MemorySessionStore:
    """Sessions in process memory; one worker only."""

    supports_multiple_workers = False
    round_trips = 0

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self._settings = settings or StoreSettings()
        self._sessions: dict[str, _Record] = {}
        self._tokens: dict[str, tuple[str, str, float]] = {}  # hash -> (sid, family, expires)
        self._by_user: dict[str, set[str]] = {}
        self._user_marks: dict[str, float] = {}
        self._epoch: float | None = None
        self._replay: dict[tuple[str, str], float] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # key digest -> (count, window end)
        self._lockouts: dict[str, float] = {}
        self._locks = KeyedLocks()
        self._touch = TouchLimiter(self._settings.touch_interval)
        self._last_purge = 0.0

    @property
    def description(self) -> str:
        """The backend name."""
        return "memory:"

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to release."""

    async def create(self, grant: SessionGrant, *, now: float | None = None) -> NewSession:
        """Store a fresh session and its first token."""
        t = clock(now)
        if t - self._last_purge >= _PURGE_EVERY:
            await self.purge_expired(now=t)
        new, family = start_session(grant, self._settings, t)
        s = new.session
        self._sessions[s.sid] = _Record(s, family)
        self._tokens[family.current] = (s.sid, s.family_id, s.absolute_expiry)
        self._by_user.setdefault(subject_key(s.sub), set()).add(s.sid)
        self._touch.record(s.sid, t)
        return new

    async def get(self, sid: str, *, now: float | None = None) -> Session | None:
        """The session if valid at ``now``."""
        rec = self._sessions.get(sid)
        if rec is None or not live(rec.session, self._marks(rec.session.sub), clock(now)):
            return None
        self._touch.record(sid, rec.session.last_seen)
        return rec.session

    async def touch(self, sid: str, *, now: float | None = None) -> bool:
        """Move ``last_seen`` forward if due and the session is alive."""
        t = clock(now)
        rec = self._sessions.get(sid)
        if rec is None or not self._touch.due(sid, t) or not rec.session.alive(t):
            return False
        rec.session = replace(rec.session, last_seen=max(rec.session.last_seen, t))
        self._touch.record(sid, rec.session.last_seen)
        return True

    async def rotate(self, refresh_token: str, *, now: float | None = None) -> RefreshResult:
        """The rotation rule of :mod:`proxy.sessions.refresh`."""
        t = clock(now)
        presented = presented_hash(refresh_token)
        entry = self._tokens.get(presented)
        if entry is None or entry[2] <= t:
            raise RefreshRejected("unknown")
        sid, family_id, _ = entry
        async with self._locks.hold(sid):
            rec = self._sessions.get(sid)
            if rec is None or rec.session.family_id != family_id:
                raise RefreshRejected("revoked")
            if not live(rec.session, self._marks(rec.session.sub), t):
                raise RefreshRejected("expired")
            outcome = decide(presented, rec.family, now=t, grace=self._settings.refresh_grace)
            if outcome is Outcome.GRACE:
                return RefreshResult(rec.session, "grace")
            if outcome is Outcome.REUSE:
                await self.revoke(sid)
                raise RefreshReuseDetected(sid=sid, sub=rec.session.sub, family_id=family_id)
            token, new_hash = new_refresh_token()
            self._tokens[new_hash] = (sid, family_id, rec.session.absolute_expiry)
            rec.family = rec.family.rotated(new_hash, t)
            rec.session = replace(rec.session, last_seen=max(rec.session.last_seen, t))
            self._touch.record(sid, rec.session.last_seen)
            return RefreshResult(rec.session, "rotated", token)

    async def revoke(self, sid: str) -> bool:
        """Delete one session; its refresh tokens no longer lead anywhere."""
        rec = self._sessions.pop(sid, None)
        self._touch.forget(sid)
        if rec is None:
            return False
        key = subject_key(rec.session.sub)
        sids = self._by_user.get(key, set())
        sids.discard(sid)
        if not sids:
            self._by_user.pop(key, None)
        return True

    async def revoke_user(self, sub: str, *, now: float | None = None) -> int:
        """Set the user's mark and delete the user's sessions."""
        key = subject_key(sub)
        self._user_marks[key] = max(self._user_marks.get(key, 0.0), clock(now))
        count = 0
        for sid in list(self._by_user.pop(key, set())):
            count += int(await self.revoke(sid))
        return count

    async def revoke_all(self, *, now: float | None = None) -> None:
        """Move the global epoch to ``now``."""
        self._epoch = max(self._epoch or 0.0, clock(now))

    async def is_revoked(
        self, sid: str, sub: str, issued_at: float, *, now: float | None = None
    ) -> bool:
        """The per-request check (no IO here)."""
        rec = self._sessions.get(sid)
        if rec is None or rec.session.sub != sub:
            return True
        s = rec.session
        self._touch.record(sid, s.last_seen)
        return not valid_times(
            created=s.created,
            last_seen=s.last_seen,
            absolute_expiry=s.absolute_expiry,
            idle_timeout=s.idle_timeout,
            issued_at=issued_at,
            marks=self._marks(sub),
            now=clock(now),
        )

    async def list_sessions(self, sub: str, *, now: float | None = None) -> list[Session]:
        """The user's valid sessions, oldest first."""
        t, marks = clock(now), self._marks(sub)
        found = (self._sessions.get(sid) for sid in self._by_user.get(subject_key(sub), set()))
        alive = [r.session for r in found if r is not None and live(r.session, marks, t)]
        return sorted(alive, key=lambda s: s.created)

    async def first_use(
        self, namespace: str, value: str, ttl: float, *, now: float | None = None
    ) -> bool:
        """Record ``value``; False if it was already recorded and has not expired."""
        if ttl <= 0:
            raise ValueError("sessions: replay ttl must be positive")
        t, key = clock(now), (check_namespace(namespace), digest(value))
        expires = self._replay.get(key)
        if expires is not None and expires > t:
            return False
        self._replay[key] = t + ttl
        return True

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
        t, k = clock(now), digest(key)
        count, end = self._failures.get(k, (0, 0.0))
        if end <= t:
            count, end = 0, t + window
        count += 1
        self._failures[k] = (count, end)
        if lock_after is not None and count >= lock_after:
            self._lockouts[k] = max(self._lockouts.get(k, 0.0), t + lock_for)
        return count

    async def reset(self, key: str, *, unlock: bool = False) -> None:
        """Forget the failure count (and the lock)."""
        k = digest(key)
        self._failures.pop(k, None)
        if unlock:
            self._lockouts.pop(k, None)

    async def locked_until(self, key: str, *, now: float | None = None) -> float | None:
        """The end of the lock on ``key`` if it is still locked."""
        until = self._lockouts.get(digest(key))
        return until if until is not None and until > clock(now) else None

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Drop everything that can no longer matter at ``now``."""
        t = clock(now)
        self._last_purge = t
        dead = [
            sid
            for sid, r in self._sessions.items()
            if not live(r.session, self._marks(r.session.sub), t)
        ]
        for sid in dead:
            await self.revoke(sid)
        tokens = [h for h, (_, _, exp) in self._tokens.items() if exp <= t]
        for h in tokens:
            del self._tokens[h]
        replay = [k for k, exp in self._replay.items() if exp <= t]
        for rk in replay:
            del self._replay[rk]
        self._failures = {k: v for k, v in self._failures.items() if v[1] > t}
        self._lockouts = {k: v for k, v in self._lockouts.items() if v > t}
        old = t - self._settings.absolute_lifetime
        self._user_marks = {k: m for k, m in self._user_marks.items() if m >= old}
        return len(dead) + len(tokens) + len(replay)

    def _marks(self, sub: str) -> Marks:
        return Marks(user=self._user_marks.get(subject_key(sub)), everyone=self._epoch)
