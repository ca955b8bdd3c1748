"""RedisSessionStore: sessions shared by gateway replicas (single server, Sentinel, Cluster).

Key layout and scripts: :mod:`proxy.sessions.redis_keys`; round trips,
timeouts and ``WAIT``: :mod:`proxy.sessions.redis_io`. This module holds the
session logic:

- ``is_revoked`` is ONE pipeline: the session's clocks, the user's mark and
  the global epoch (on a Cluster, one concurrent round trip per node).
- Refresh: index lookup; then ``SET {s:sid}:lock <random> NX PX lock_ttl``
  pipelined with the session read (retried with backoff until the lock is
  ours); the decision of :mod:`proxy.sessions.refresh`; the new token's index
  entry; a compare-and-set script on the family's current hash, so a lock that
  expired mid-way cannot fork the family; release by compare-and-delete.
- Revokes (one session, a user's mark, the epoch, a detected reuse) are
  replicated writes: with ``revoke_replicas`` > 0 (default 1 with Sentinel),
  fewer acknowledgements raise SessionStoreUnavailable. The revoke is then in
  force on the master already; the caller reports failure and may retry.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from redis.typing import EncodableT

from kms_client.rng import random_bytes
from proxy.sessions import redis_keys as lua
from proxy.sessions.codec import StoredTimes, decode_session, encode_identity
from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected, SessionStoreUnavailable
from proxy.sessions.model import NewSession, RefreshResult, Session, SessionGrant, b64url
from proxy.sessions.redis_guards import RedisGuards, ms
from proxy.sessions.redis_io import Pipe, RedisIO
from proxy.sessions.redis_keys import GC_SLACK_MS, RedisKeys
from proxy.sessions.redis_uri import RedisTarget
from proxy.sessions.refresh import Family, Outcome, decide, new_refresh_token, presented_hash
from proxy.sessions.rules import Marks, live, valid_times
from proxy.sessions.store import StoreSettings, clock, start_session, subject_key
from proxy.sessions.touch import TouchLimiter

log = logging.getLogger(__name__)

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
        """Close the connection pools."""
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
        raw, epoch = await self._io.pipeline(
            "get", lambda p: (p.hgetall(k.session(sid)), p.get(k.epoch()))
        )
        fields = _fields(raw)
        if not fields:
            return None
        mark = await self._io.call("get", lambda c: c.get(k.user_mark(fields.get("u", ""))))
        session, _ = _decode(sid, fields)
        if not live(session, Marks(user=_number(mark), everyone=_number(epoch)), t):
            return None
        self._touch.record(sid, session.last_seen)
        return session

    async def touch(self, sid: str, *, now: float | None = None) -> bool:
        """A conditional write (script) when one is due."""
        t = clock(now)
        if not self._touch.due(sid, t):
            return False
        key = self._keys.session(sid)
        done = int(
            await self._io.call("touch", lambda c: c.eval(lua.TOUCH, 1, key, repr(t), GC_SLACK_MS))
        )
        if done == 0:
            self._touch.forget(sid)
            return False
        self._touch.record(sid, t)
        return done == 1

    async def rotate(self, refresh_token: str, *, now: float | None = None) -> RefreshResult:
        """The rotation rule of :mod:`proxy.sessions.refresh` under the session's lock."""
        t, presented = clock(now), presented_hash(refresh_token)
        index = _fields(
            await self._io.call("rotate", lambda c: c.hgetall(self._keys.token(presented)))
        )
        sid = index.get("sid", "")
        if not sid:
            raise RefreshRejected("unknown")
        owner = b64url(random_bytes(16))
        try:
            for _ in range(3):
                session, family = await self._locked_read(sid, index, owner, t)
                outcome = decide(presented, family, now=t, grace=self._settings.refresh_grace)
                if outcome is Outcome.GRACE:
                    return RefreshResult(session, "grace")
                if outcome is Outcome.REUSE:
                    await self._revoke_reused(session)
                result = await self._write_rotation(session, family, t)
                if result is not None:
                    self._touch.record(sid, result.session.last_seen)
                    return result
                await self._unlock(sid, owner)  # our lock expired and the family moved on
            raise SessionStoreUnavailable("sessions: refresh kept conflicting")
        finally:
            await self._unlock(sid, owner)

    async def _revoke_reused(self, session: Session) -> None:
        """Revoke a family whose old token came back; always raises RefreshReuseDetected."""
        sid, sub, family_id = session.sid, session.sub, session.family_id
        try:
            await self.revoke(sid)
        except SessionStoreUnavailable as e:
            raise RefreshReuseDetected(sid=sid, sub=sub, family_id=family_id, revoked=False) from e
        raise RefreshReuseDetected(sid=sid, sub=sub, family_id=family_id)

    async def _locked_read(
        self, sid: str, index: dict[str, str], owner: str, now: float
    ) -> tuple[Session, Family]:
        """Take the refresh lock and read session and marks in the same pipeline."""
        k, s = self._keys, self._settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.lock_ttl + s.timeout
        delay = 0.005

        def _build(p: Pipe) -> None:
            p.set(k.lock(sid), owner, nx=True, px=ms(s.lock_ttl))
            p.hgetall(k.session(sid))
            p.get(k.user_mark(index.get("u", "")))
            p.get(k.epoch())

        while True:
            got, raw, mark, epoch = await self._io.pipeline("refresh lock", _build)
            if got:
                break
            if loop.time() >= deadline:
                raise SessionStoreUnavailable("sessions: refresh lock not acquired in time")
            await asyncio.sleep(delay * (1 + random_bytes(1)[0] / 255))
            delay = min(delay * 2, 0.05)
        fields = _fields(raw)
        if not fields or fields.get("fam") != index.get("fam"):
            raise RefreshRejected("revoked")
        session, family = _decode(sid, fields)
        if not live(session, Marks(user=_number(mark), everyone=_number(epoch)), now):
            raise RefreshRejected("expired")
        return session, family

    async def _write_rotation(
        self, session: Session, family: Family, now: float
    ) -> RefreshResult | None:
        """Index the new token, then compare-and-set the family; None if it changed meanwhile."""
        k, sid = self._keys, session.sid
        token, new_hash = new_refresh_token()
        index: dict[EncodableT, EncodableT] = {
            "sid": sid,
            "fam": session.family_id,
            "u": subject_key(session.sub),
        }
        ttl = ms(session.absolute_expiry - now) + GC_SLACK_MS
        await self._io.pipeline(
            "rotate",
            lambda p: (p.hset(k.token(new_hash), mapping=index), p.pexpire(k.token(new_hash), ttl)),
        )
        args = (family.current, new_hash, repr(now), GC_SLACK_MS)
        done = await self._io.call("rotate", lambda c: c.eval(lua.ROTATE, 1, k.session(sid), *args))
        if int(done) != 1:
            return None
        return RefreshResult(
            replace(session, last_seen=max(session.last_seen, now)), "rotated", token
        )

    async def _unlock(self, sid: str, owner: str) -> None:
        try:
            await self._io.call(
                "unlock", lambda c: c.eval(lua.UNLOCK, 1, self._keys.lock(sid), owner)
            )
        except SessionStoreUnavailable:
            log.warning("sessions: refresh lock not released; it expires by itself", exc_info=True)

    async def revoke(self, sid: str) -> bool:
        """Delete the session hash (replicated); its tokens then lead nowhere."""
        self._touch.forget(sid)
        key = self._keys.session(sid)
        (deleted,) = await self._io.replicated("revoke", [key], lambda p: p.delete(key))
        return _int(deleted) == 1

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
        sids = [_text(m) for m in members] if isinstance(members, list) else []
        for sid in sids:
            self._touch.forget(sid)

        def _build(p: Pipe) -> None:
            for sid in sids:
                p.delete(k.session(sid))
            p.delete(set_key)

        deleted = await self._io.pipeline("revoke user", _build)
        return sum(_int(n) for n in deleted[:-1])

    async def revoke_all(self, *, now: float | None = None) -> None:
        """Move the global epoch (one replicated write)."""
        t, key = clock(now), self._keys.epoch()
        await self._io.replicated(
            "revoke all", [key], lambda p: p.eval(lua.MARK, 1, key, repr(t), 0)
        )

    async def is_revoked(
        self, sid: str, sub: str, issued_at: float, *, now: float | None = None
    ) -> bool:
        """ONE pipeline: the session's clocks, the user's mark, the global epoch."""
        t, k = clock(now), self._keys
        raw, mark, epoch = await self._io.pipeline(
            "check",
            lambda p: (
                p.hmget(k.session(sid), list(_CHECK_FIELDS)),
                p.get(k.user_mark(subject_key(sub))),
                p.get(k.epoch()),
            ),
        )
        values = raw if isinstance(raw, list) else []
        if len(values) != len(_CHECK_FIELDS) or values[0] is None or _text(values[0]) != sub:
            return True
        created, seen, absolute, idle = (_float(v) for v in values[1:])
        self._touch.record(sid, seen)
        return not valid_times(
            created=created,
            last_seen=seen,
            absolute_expiry=absolute,
            idle_timeout=idle,
            issued_at=issued_at,
            marks=Marks(user=_number(mark), everyone=_number(epoch)),
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
        sids = [_text(m) for m in members] if isinstance(members, list) else []
        if not sids:
            return []

        def _build(p: Pipe) -> None:
            for sid in sids:
                p.hgetall(k.session(sid))

        raws = await self._io.pipeline("list", _build)
        marks = Marks(user=_number(mark), everyone=_number(epoch))
        found = [_decode(sid, _fields(raw))[0] for sid, raw in zip(sids, raws, strict=True) if raw]
        return sorted((s for s in found if live(s, marks, t)), key=lambda s: s.created)

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Nothing to do: every key carries a TTL a minute past its last use."""
        return 0


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise SessionStoreUnavailable("sessions: unexpected redis reply")


def _int(value: object) -> int:
    if isinstance(value, int):
        return value
    raise SessionStoreUnavailable("sessions: unexpected redis reply")


def _float(value: object) -> float:
    try:
        return float(_text(value))
    except ValueError as e:
        raise SessionStoreUnavailable("sessions: corrupt session record") from e


def _number(value: object) -> float | None:
    return None if value is None else _float(value)


def _fields(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise SessionStoreUnavailable("sessions: unexpected redis reply")
    return {_text(key): _text(value) for key, value in raw.items()}


def _decode(sid: str, f: dict[str, str]) -> tuple[Session, Family]:
    """A session hash as (Session, Family); SessionStoreUnavailable if corrupt."""
    try:
        times = StoredTimes(float(f["c"]), float(f["seen"]), float(f["abs"]), float(f["idle"]))
        family = Family(
            current=f["rtc"],
            previous=f.get("rtp"),
            rotated_at=float(f["rtr"]) if "rtr" in f else None,
        )
        session = decode_session(
            sid=sid, sub=f["sub"], family_id=f["fam"], identity=f["id"], times=times
        )
    except (KeyError, ValueError) as e:
        raise SessionStoreUnavailable("sessions: corrupt session record") from e
    return session, family
