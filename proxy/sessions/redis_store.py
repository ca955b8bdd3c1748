"""RedisSessionStore: sessions shared by gateway replicas (single server, Sentinel, Cluster).

Key layout and scripts: :mod:`proxy.sessions.redis_keys`; round trips,
timeouts and ``WAIT``: :mod:`proxy.sessions.redis_io`. This module holds the
session logic:

- ``is_revoked`` is ONE round trip reading the session's clocks, the user's
  mark and the global epoch: one ``EVAL`` answering one bulk string per
  check on a single node or Sentinel (one command and flat replies cost the
  client far less CPU than a redis-py pipeline and its nested replies),
  shared by the checks of one event-loop turn (:mod:`proxy.sessions.batch`);
  one pipeline on a Cluster (the keys live in different slots; one
  concurrent round trip per node).
- Refresh rotation, with its per-session lock: :mod:`proxy.sessions.redis_refresh`.
- Revokes (one session, a user's mark, the epoch, a detected reuse) are
  replicated writes: with ``revoke_replicas`` > 0 (default 1 with Sentinel),
  fewer acknowledgements raise SessionStoreUnavailable. The revoke is then in
  force on the master already; the caller reports failure and may retry.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.typing import EncodableT

from proxy.sessions import redis_keys as lua
from proxy.sessions import redis_replies as r
from proxy.sessions.batch import CheckBatcher
from proxy.sessions.codec import encode_identity
from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.model import NewSession, RefreshResult, Session, SessionGrant, is_sid
from proxy.sessions.redis_guards import RedisGuards, ms
from proxy.sessions.redis_io import Pipe, RedisIO
from proxy.sessions.redis_keys import GC_SLACK_MS, RedisKeys
from proxy.sessions.redis_refresh import RedisRefresh
from proxy.sessions.redis_uri import RedisTarget
from proxy.sessions.refresh import presented_hash
from proxy.sessions.rules import Marks, live, valid_times
from proxy.sessions.store import StoreSettings, clock, start_session, subject_key
from proxy.sessions.touch import TouchLimiter

_CHECK_FIELDS = ("sub", "c", "seen", "abs", "idle")


class RedisSessionStore(RedisGuards):
    """Sessions in Redis; see the module docstring for locking and replication."""

    supports_multiple_workers = True

    def __init__(self, target: RedisTarget, settings: StoreSettings | None = None) -> None:
        self._target = target
        self._settings = s = settings or StoreSettings()
        replicas = s.revoke_replicas
        if replicas is None:
            replicas = 1 if target.kind == "sentinel" else 0
        super().__init__(RedisIO(target, s, replicas=replicas), RedisKeys(s.key_prefix))
        self._touch = TouchLimiter(s.touch_interval)
        self._refresh = RedisRefresh(self._io, self._keys, s, self.revoke)
        self._checks: CheckBatcher[tuple[str, str], str] = CheckBatcher(
            self._check_many, name="sessions-redis-check"
        )

    @property
    def round_trips(self) -> int:
        """Commands and pipelines sent so far (a Cluster pipeline counts once)."""
        return self._io.round_trips

    @property
    def description(self) -> str:
        """Scheme and hosts, no credentials."""
        return self._target.description

    @property
    def revoke_replicas(self) -> int:
        """Replicas that must acknowledge every revoke."""
        return self._io.replicas

    async def open(self) -> None:
        """Connect and ping."""
        await self._io.open()

    async def close(self) -> None:
        """Close the connection pools (after the checks in flight)."""
        await self._checks.close()
        await self._io.close()

    async def create(self, grant: SessionGrant, *, now: float | None = None) -> NewSession:
        """One pipeline: session hash, token index, the user's session set."""
        t = clock(now)
        new, family = start_session(grant, self._settings, t)
        s, k, subject = new.session, self._keys, subject_key(new.session.sub)
        fields: dict[EncodableT, EncodableT] = {
            "sub": s.sub, "fam": s.family_id, "u": subject, "id": encode_identity(s),
            "c": repr(s.created), "seen": repr(s.last_seen), "abs": repr(s.absolute_expiry),
            "idle": repr(s.idle_timeout), "rtc": family.current,
        }  # fmt: skip
        index: dict[EncodableT, EncodableT] = {"sid": s.sid, "fam": s.family_id, "u": subject}
        user_ttl = ms(self._settings.absolute_lifetime) + GC_SLACK_MS

        def _build(p: Pipe) -> None:
            p.hset(k.session(s.sid), mapping=fields)
            p.pexpire(k.session(s.sid), ms(s.expires_at - t) + GC_SLACK_MS)
            p.hset(k.token(family.current), mapping=index)
            p.pexpire(k.token(family.current), ms(s.absolute_expiry - t) + GC_SLACK_MS)
            p.zadd(k.user_sessions(subject), {s.sid: s.absolute_expiry})
            p.zremrangebyscore(k.user_sessions(subject), "-inf", t)
            p.pexpire(k.user_sessions(subject), user_ttl)

        await self._io.pipeline("create", _build)
        self._touch.record(s.sid, t)
        return new

    async def get(self, sid: str, *, now: float | None = None) -> Session | None:
        """Session hash and epoch in one pipeline, then the user's mark."""
        t, k = clock(now), self._keys
        if not is_sid(sid):  # never let a malformed id name a key
            return None
        raw, epoch = await self._io.pipeline(
            "get", lambda p: (p.hgetall(k.session(sid)), p.get(k.epoch()))
        )
        fields = r.fields(raw)
        if not fields:
            return None
        mark = await self._io.call("get", lambda c: c.get(k.user_mark(fields.get("u", ""))))
        session, _ = r.decode(sid, fields)
        if not live(session, Marks(user=r.number(mark), everyone=r.number(epoch)), t):
            return None
        self._touch.record(sid, session.last_seen)
        return session

    async def touch(self, sid: str, *, now: float | None = None) -> bool:
        """A conditional write (script) when one is due."""
        t = clock(now)
        if not is_sid(sid) or not self._touch.due(sid, t):
            return False
        key = self._keys.session(sid)
        done = r.as_int(
            await self._io.call("touch", lambda c: c.eval(lua.TOUCH, 1, key, repr(t), GC_SLACK_MS))
        )
        if done == 0:
            self._touch.forget(sid)
            return False
        self._touch.record(sid, t)
        return done == 1

    async def rotate(self, refresh_token: str, *, now: float | None = None) -> RefreshResult:
        """The rotation rule of :mod:`proxy.sessions.refresh` (see :mod:`redis_refresh`)."""
        result = await self._refresh.rotate(presented_hash(refresh_token), clock(now))
        self._touch.record(result.session.sid, result.session.last_seen)
        return result

    async def revoke(self, sid: str) -> bool:
        """Delete the session hash (replicated); its tokens then lead nowhere."""
        self._touch.forget(sid)
        if not is_sid(sid):
            return False
        key = self._keys.session(sid)
        (deleted,) = await self._io.replicated("revoke", [key], lambda p: p.delete(key))
        return r.as_int(deleted) == 1

    async def revoke_user(self, sub: str, *, now: float | None = None) -> int:
        """Move the user's mark (replicated), then delete the sessions the user's set lists."""
        t, k, subject = clock(now), self._keys, subject_key(sub)
        mark_key, set_key = k.user_mark(subject), k.user_sessions(subject)
        ttl = ms(self._settings.absolute_lifetime) + GC_SLACK_MS
        _, members = await self._io.replicated(
            "revoke user",
            [mark_key],
            lambda p: (p.eval(lua.MARK, 1, mark_key, repr(t), ttl), p.zrange(set_key, 0, -1)),
        )
        sids = [r.text(m) for m in members] if isinstance(members, list) else []
        for sid in sids:
            self._touch.forget(sid)

        def _build(p: Pipe) -> None:
            for sid in sids:
                p.delete(k.session(sid))
            p.delete(set_key)

        deleted = await self._io.pipeline("revoke user", _build)
        return sum(r.as_int(n) for n in deleted[:-1])

    async def revoke_all(self, *, now: float | None = None) -> None:
        """Move the global epoch (one replicated write)."""
        t, key = clock(now), self._keys.epoch()
        await self._io.replicated(
            "revoke all", [key], lambda p: p.eval(lua.MARK, 1, key, repr(t), 0)
        )

    async def _check(self, keys: tuple[str, str, str]) -> tuple[list[object], object, object]:
        """([sub, c, seen, abs, idle], user mark, epoch): one EVAL, or a pipeline on a Cluster."""
        if self._io.clustered:
            raw, mark, epoch = await self._io.pipeline(
                "check",
                lambda p: (p.hmget(keys[0], list(_CHECK_FIELDS)), p.get(keys[1]), p.get(keys[2])),
            )
            return (raw if isinstance(raw, list) else []), mark, epoch
        found = await self._checks.ask((keys[0], keys[1]))
        if not found:
            return [], None, None  # no session
        parts = found.split("\n", 6)
        if len(parts) != 7:
            raise SessionStoreUnavailable("sessions: unexpected redis reply")
        *clocks, mark_text, epoch_text, stored_sub = parts
        return [stored_sub, *clocks], mark_text or None, epoch_text or None

    async def _check_many(self, checks: Sequence[tuple[str, str]]) -> list[str]:
        """One EVAL for the (session, user mark) keys of a batch: one record text each."""
        keys = [self._keys.epoch(), *(key for pair in checks for key in pair)]
        reply = await self._io.call("check", lambda c: c.eval(lua.CHECK_MANY, len(keys), *keys))
        if not isinstance(reply, list):
            raise SessionStoreUnavailable("sessions: unexpected redis reply")
        return [r.text(found) for found in reply]

    async def is_revoked(
        self, sid: str, sub: str, issued_at: float, *, now: float | None = None
    ) -> bool:
        """ONE round trip: the session's clocks, the user's mark, the global epoch.

        On a single server or Sentinel the checks of one event-loop turn share
        that round trip (:mod:`proxy.sessions.batch`: each still reads the store
        after its request arrived).
        """
        t, k = clock(now), self._keys
        if not is_sid(sid):
            return True
        keys = (k.session(sid), k.user_mark(subject_key(sub)), k.epoch())
        values, mark, epoch = await self._check(keys)
        if len(values) != len(_CHECK_FIELDS) or values[0] is None or r.text(values[0]) != sub:
            return True
        created, seen, absolute, idle = (r.as_float(v) for v in values[1:])
        self._touch.record(sid, seen)
        return not valid_times(
            created=created,
            last_seen=seen,
            absolute_expiry=absolute,
            idle_timeout=idle,
            issued_at=issued_at,
            marks=Marks(user=r.number(mark), everyone=r.number(epoch)),
            now=t,
        )

    async def list_sessions(self, sub: str, *, now: float | None = None) -> list[Session]:
        """The user's valid sessions, oldest first (two round trips)."""
        t, k, subject = clock(now), self._keys, subject_key(sub)
        members, mark, epoch = await self._io.pipeline(
            "list",
            lambda p: (
                p.zrange(k.user_sessions(subject), 0, -1),
                p.get(k.user_mark(subject)),
                p.get(k.epoch()),
            ),
        )
        sids = [r.text(m) for m in members] if isinstance(members, list) else []
        if not sids:
            return []

        def _build(p: Pipe) -> None:
            for sid in sids:
                p.hgetall(k.session(sid))

        raws = await self._io.pipeline("list", _build)
        marks = Marks(user=r.number(mark), everyone=r.number(epoch))
        found = [
            r.decode(sid, r.fields(raw))[0] for sid, raw in zip(sids, raws, strict=True) if raw
        ]
        return sorted((s for s in found if live(s, marks, t)), key=lambda s: s.created)

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Nothing to do: every key carries a TTL a minute past its last use."""
        return 0
