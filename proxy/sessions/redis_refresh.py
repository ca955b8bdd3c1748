"""Refresh-token rotation on Redis: the per-session lock and the compare-and-set.

Steps (the rule itself is :mod:`proxy.sessions.refresh`):

1. ``HGETALL {t:<hash>}``: the token's index entry (session, family, subject).
2. ``SET {s:sid}:lock <random owner> NX PX lock_ttl`` pipelined with the reads
   of the session hash, the user's mark and the epoch. Not ours: back off
   (5 to 50 ms, jittered) and retry until ``lock_ttl + timeout`` has passed,
   then fail closed. One refresh per session at a time, across replicas.
3. Decide: rotate, grace, or reuse (which revokes the session, replicated).
4. Rotate: write the new token's index entry, then run the ``ROTATE`` script,
   a compare-and-set on the family's current hash. If our lock expired and
   another replica rotated meanwhile, the script refuses and we start over at
   step 2, so a family can never fork.
5. Release the lock with a compare-and-delete script (only our own owner value).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import NoReturn

from redis.typing import EncodableT

from kms_client.rng import random_bytes
from proxy.sessions import redis_keys as lua
from proxy.sessions import redis_replies as r
from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected, SessionStoreUnavailable
from proxy.sessions.model import RefreshResult, Session, b64url
from proxy.sessions.redis_guards import ms
from proxy.sessions.redis_io import Pipe, RedisIO
from proxy.sessions.redis_keys import GC_SLACK_MS, RedisKeys
from proxy.sessions.refresh import Family, Outcome, decide, new_refresh_token
from proxy.sessions.rules import Marks
from proxy.sessions.store import StoreSettings, subject_key

log = logging.getLogger(__name__)

_ATTEMPTS = 3


class RedisRefresh:
    """Rotation for one store; ``revoke`` is the store's replicated revoke."""

    def __init__(
        self,
        io: RedisIO,
        keys: RedisKeys,
        settings: StoreSettings,
        revoke: Callable[[str], Awaitable[bool]],
    ) -> None:
        self._io = io
        self._keys = keys
        self._settings = settings
        self._revoke = revoke

    async def rotate(self, presented: str, now: float) -> RefreshResult:
        """Steps 1 to 5 for the token hash ``presented``."""
        index = r.fields(
            await self._io.call("rotate", lambda c: c.hgetall(self._keys.token(presented)))
        )
        sid = index.get("sid", "")
        if not sid:
            raise RefreshRejected("unknown")
        owner, held = b64url(random_bytes(16)), False
        try:
            for _ in range(_ATTEMPTS):
                raw, mark, epoch = await self._lock_and_read(sid, index, owner)
                held = True
                marks = Marks(user=r.number(mark), everyone=r.number(epoch))
                session, family = r.live_family(sid, index, raw, marks, now)
                outcome = decide(presented, family, now=now, grace=self._settings.refresh_grace)
                if outcome is Outcome.GRACE:
                    return RefreshResult(session, "grace")
                if outcome is Outcome.REUSE:
                    await self._revoke_reused(session)
                result = await self._write_rotation(session, family, now)
                if result is not None:
                    return result
                await self._unlock(sid, owner)  # our lock expired and the family moved on
                held = False
            raise SessionStoreUnavailable("sessions: refresh kept conflicting")
        finally:
            if held:
                await self._unlock(sid, owner)

    async def _lock_and_read(
        self, sid: str, index: dict[str, str], owner: str
    ) -> tuple[object, object, object]:
        """Step 2: the lock and the reads in one pipeline, retried until the lock is ours."""
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
                return raw, mark, epoch
            if loop.time() >= deadline:
                raise SessionStoreUnavailable("sessions: refresh lock not acquired in time")
            await asyncio.sleep(delay * (1 + random_bytes(1)[0] / 255))
            delay = min(delay * 2, 0.05)

    async def _revoke_reused(self, session: Session) -> NoReturn:
        """Step 3, reuse: revoke the family; always raises RefreshReuseDetected."""
        sid, sub, family_id = session.sid, session.sub, session.family_id
        try:
            await self._revoke(sid)
        except SessionStoreUnavailable as e:
            raise RefreshReuseDetected(sid=sid, sub=sub, family_id=family_id, revoked=False) from e
        raise RefreshReuseDetected(sid=sid, sub=sub, family_id=family_id)

    async def _write_rotation(
        self, session: Session, family: Family, now: float
    ) -> RefreshResult | None:
        """Step 4; None if the family changed underneath."""
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
        if r.as_int(done) != 1:
            return None
        seen = max(session.last_seen, now)
        return RefreshResult(replace(session, last_seen=seen), "rotated", token)

    async def _unlock(self, sid: str, owner: str) -> None:
        """Step 5; a failure only delays the next refresh until the lock expires."""
        key = self._keys.lock(sid)
        try:
            await self._io.call("unlock", lambda c: c.eval(lua.UNLOCK, 1, key, owner))
        except SessionStoreUnavailable:
            log.warning("sessions: refresh lock not released; it expires by itself", exc_info=True)
