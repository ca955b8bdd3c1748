"""Detokenize rate limiters: fixed windows per key, in memory or in Redis.

Rules both keep (the :class:`~plugins.base.RateLimiter` contract):
- ``take(key, count, limit=, window=)`` adds ``count`` to ``key``'s current
  window and returns True, or returns False and takes NOTHING when that
  would pass ``limit`` (a refused batch does not eat the budget);
- a window starts at the first take of a key and lasts ``window`` seconds
  (fixed, not sliding: a subject may get up to 2x ``limit`` across a window
  boundary; documented, cheap, and shared by every replica with Redis);
- Redis errors and timeouts raise :class:`RateLimiterUnavailable`: the
  message fails closed, it is never served unlimited.

``MemoryRateLimiter`` counts for one process (one worker, tests);
``RedisRateLimiter`` counts for every replica in one round trip (a Lua
script: INCRBY, PEXPIRE on a new key, DECRBY back when over the limit).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from plugins.errors import RateLimiterUnavailable

_SWEEP_EVERY = 1.0  # seconds of clock time between sweeps of expired memory windows

_TAKE = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if n > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 0
end
return 1
"""


def _check(count: int, limit: int, window: float) -> None:
    if count < 0 or limit < 1 or window <= 0:
        raise ValueError("ratelimit: count >= 0, limit >= 1 and window > 0 are required")


class MemoryRateLimiter:
    """Fixed windows in this process's memory (one worker only)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (ends at, used)
        self._next_sweep = 0.0

    async def take(self, key: str, count: int, *, limit: int, window: float) -> bool:
        """Add ``count`` unless that passes ``limit``; False takes nothing."""
        _check(count, limit, window)
        if count == 0:
            return True
        now = self._clock()
        self._sweep(now)
        ends, used = self._windows.get(key, (0.0, 0))
        if ends <= now:
            ends, used = now + window, 0
        if used + count > limit:
            self._windows[key] = (ends, used)
            return False
        self._windows[key] = (ends, used + count)
        return True

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        for key in [k for k, (ends, _) in self._windows.items() if ends <= now]:
            del self._windows[key]


class RedisRateLimiter:
    """Fixed windows in Redis, shared by every replica; fails closed."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "tokengate:ratelimit:",
        timeout: float = 0.5,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout = timeout
        self._script: AsyncScript = client.register_script(_TAKE)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "tokengate:ratelimit:", timeout: float = 0.5
    ) -> RedisRateLimiter:
        """A limiter on its own connection pool (``redis://`` or ``rediss://``)."""
        client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix, timeout=timeout)

    async def take(self, key: str, count: int, *, limit: int, window: float) -> bool:
        """One round trip; raises RateLimiterUnavailable on any Redis problem."""
        _check(count, limit, window)
        if count == 0:
            return True  # INCRBY 0 would re-arm the expiry of a live window
        window_ms = max(1, round(window * 1000))
        try:
            async with asyncio.timeout(self._timeout):
                taken = await self._script(
                    keys=[self._prefix + key], args=[count, limit, window_ms]
                )
        except (RedisError, OSError, TimeoutError) as e:
            raise RateLimiterUnavailable(
                f"ratelimit: redis did not answer ({type(e).__name__})"
            ) from e
        return int(taken) == 1

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()
