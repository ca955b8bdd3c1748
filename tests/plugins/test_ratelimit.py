"""Rate limiters: the take contract in memory and on the shared Redis; Redis fails closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from plugins.errors import RateLimiterUnavailable
from plugins.ratelimit import MemoryRateLimiter, RedisRateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "redis"])
async def limiter(
    request: pytest.FixtureRequest, redis_url: str, unique_prefix: str
) -> AsyncIterator[MemoryRateLimiter | RedisRateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock=Clock())
        return
    redis_limiter = RedisRateLimiter.from_url(redis_url, prefix=f"{unique_prefix}:")
    try:
        yield redis_limiter
    finally:
        await redis_limiter.close()


# (count, expected) taken in turn from one key with limit 5
SEQUENCES = [
    [(5, True), (1, False)],
    [(3, True), (3, False), (2, True), (1, False)],  # a refused take takes nothing
    [(6, False), (5, True)],
    [(0, True), (5, True), (0, True), (1, False)],
    [(1, True)] * 5 + [(1, False)],
]


@pytest.mark.parametrize("sequence", SEQUENCES)
async def test_take(
    limiter: MemoryRateLimiter | RedisRateLimiter, sequence: list[tuple[int, bool]]
) -> None:
    for count, expected in sequence:
        assert await limiter.take("k", count, limit=5, window=60) is expected


async def test_keys_are_independent(limiter: MemoryRateLimiter | RedisRateLimiter) -> None:
    assert await limiter.take("a", 5, limit=5, window=60)
    assert not await limiter.take("a", 1, limit=5, window=60)
    assert await limiter.take("b", 5, limit=5, window=60)


@pytest.mark.parametrize(
    ("count", "limit", "window"), [(-1, 5, 60.0), (1, 0, 60.0), (1, 5, 0.0), (1, 5, -1.0)]
)
async def test_bad_arguments(
    limiter: MemoryRateLimiter | RedisRateLimiter, count: int, limit: int, window: float
) -> None:
    with pytest.raises(ValueError, match="ratelimit: "):
        await limiter.take("k", count, limit=limit, window=window)


async def test_memory_windows_are_fixed_from_the_first_take() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    assert await limiter.take("k", 2, limit=2, window=10)
    clock.t += 9.99
    assert not await limiter.take("k", 1, limit=2, window=10)
    clock.t += 0.01
    assert await limiter.take("k", 2, limit=2, window=10)
    assert not await limiter.take("k", 1, limit=2, window=10)


async def test_memory_forgets_expired_windows() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    for i in range(100):
        await limiter.take(f"k{i}", 1, limit=1, window=5)
    clock.t += 5
    await limiter.take("fresh", 1, limit=1, window=5)
    assert list(limiter._windows) == ["fresh"]


async def test_redis_keys_carry_the_prefix_and_the_window(
    redis_url: str, unique_prefix: str
) -> None:
    from redis.asyncio import Redis

    limiter = RedisRateLimiter.from_url(redis_url, prefix=f"{unique_prefix}:")
    client = Redis.from_url(redis_url)
    try:
        assert await limiter.take("detokenize:ssn:alice", 3, limit=5, window=30)
        assert await client.get(f"{unique_prefix}:detokenize:ssn:alice") == b"3"
        assert 29_000 < await client.pttl(f"{unique_prefix}:detokenize:ssn:alice") <= 30_000
        assert not await limiter.take("detokenize:ssn:alice", 3, limit=5, window=30)
        assert await client.get(f"{unique_prefix}:detokenize:ssn:alice") == b"3"
    finally:
        await client.delete(f"{unique_prefix}:detokenize:ssn:alice")
        await client.aclose()
        await limiter.close()


async def test_redis_down_fails_closed(unused_port: int) -> None:
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{unused_port}/0", timeout=0.5)
    try:
        with pytest.raises(RateLimiterUnavailable, match="ratelimit: redis did not answer") as e:
            await limiter.take("k", 1, limit=5, window=60)
        assert e.value.status == 503
    finally:
        await limiter.close()


async def test_a_redis_that_never_answers_times_out_closed(unused_port: int) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never answer
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", unused_port)
    limiter = RedisRateLimiter.from_url(f"redis://127.0.0.1:{unused_port}/0", timeout=0.2)
    try:
        with pytest.raises(RateLimiterUnavailable, match="TimeoutError"):
            await limiter.take("k", 1, limit=5, window=60)
    finally:
        await limiter.close()
        server.close()
        await server.wait_closed()
