"""Replay guards and failure counters of the Redis session store.

Each operation is one script or command (one round trip). Values and counter
keys are hashed before they name a key. Expiry is decided against the caller's
``now`` inside the script; the Redis TTL only collects garbage afterwards.
"""

from __future__ import annotations

from proxy.sessions import redis_keys as lua
from proxy.sessions.redis_io import RedisIO
from proxy.sessions.redis_keys import GC_SLACK_MS, RedisKeys
from proxy.sessions.store import check_namespace, clock, digest


def ms(seconds: float) -> int:
    """Whole milliseconds, at least 1 (a TTL of 0 would be an error)."""
    return max(1, int(seconds * 1000))


class RedisGuards:
    """``first_use``, ``incr_failures``, ``reset`` and ``locked_until`` on Redis."""

    def __init__(self, io: RedisIO, keys: RedisKeys) -> None:
        self._io = io
        self._keys = keys

    async def first_use(
        self, namespace: str, value: str, ttl: float, *, now: float | None = None
    ) -> bool:
        """Record ``value``; False if it was already recorded and has not expired."""
        if ttl <= 0:
            raise ValueError("sessions: replay ttl must be positive")
        t, key = clock(now), self._keys.replay(check_namespace(namespace), digest(value))
        args = (repr(t), repr(t + ttl), ms(ttl) + GC_SLACK_MS)
        done = await self._io.call("first_use", lambda c: c.eval(lua.FIRST_USE, 1, key, *args))
        return int(done) == 1

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
        t, d = clock(now), digest(key)
        args = (
            repr(t),
            repr(t + window),
            GC_SLACK_MS,
            lock_after or 0,
            repr(t + lock_for),
            ms(lock_for) + GC_SLACK_MS,
        )
        keys = (self._keys.failures(d), self._keys.lockout(d))
        count = await self._io.call("failures", lambda c: c.eval(lua.FAILURE, 2, *keys, *args))
        return int(count)

    async def reset(self, key: str, *, unlock: bool = False) -> None:
        """Forget the failure count (and the lock)."""
        d = digest(key)
        # One slot on a Cluster: the counter and its lock share a hash tag.
        keys = [self._keys.failures(d)] + ([self._keys.lockout(d)] if unlock else [])
        await self._io.call("failures", lambda c: c.delete(*keys))

    async def locked_until(self, key: str, *, now: float | None = None) -> float | None:
        """The end of the lock on ``key`` if it is still locked."""
        raw = await self._io.call("failures", lambda c: c.get(self._keys.lockout(digest(key))))
        until = None if raw is None else float(raw)
        return until if until is not None and until > clock(now) else None
