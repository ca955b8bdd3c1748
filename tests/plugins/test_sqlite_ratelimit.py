"""SqliteRateLimiter: windows shared through one file, refusals take nothing, fail closed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plugins.errors import RateLimiterUnavailable
from plugins.sqlite_ratelimit import SqliteRateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


async def test_limit_within_window_then_reset(tmp_path: Path) -> None:
    clock = Clock()
    lim = SqliteRateLimiter(tmp_path / "rl.db", clock=clock)
    assert await lim.take("alice:ssn", 3, limit=5, window=60)
    assert await lim.take("alice:ssn", 2, limit=5, window=60)
    assert not await lim.take("alice:ssn", 1, limit=5, window=60)
    clock.t += 61
    assert await lim.take("alice:ssn", 5, limit=5, window=60)


async def test_refused_take_takes_nothing(tmp_path: Path) -> None:
    lim = SqliteRateLimiter(tmp_path / "rl.db", clock=Clock())
    assert await lim.take("k", 4, limit=5, window=60)
    assert not await lim.take("k", 2, limit=5, window=60)
    assert await lim.take("k", 1, limit=5, window=60)


async def test_keys_are_independent(tmp_path: Path) -> None:
    lim = SqliteRateLimiter(tmp_path / "rl.db", clock=Clock())
    assert await lim.take("alice:ssn", 5, limit=5, window=60)
    assert await lim.take("bob:ssn", 5, limit=5, window=60)
    assert not await lim.take("alice:ssn", 1, limit=5, window=60)


async def test_two_limiters_on_one_file_share_windows(tmp_path: Path) -> None:
    """Two workers of one host open the same file: the budget is shared."""
    clock = Clock()
    a = SqliteRateLimiter(tmp_path / "rl.db", clock=clock)
    b = SqliteRateLimiter(tmp_path / "rl.db", clock=clock)
    assert await a.take("alice:ssn", 3, limit=5, window=60)
    assert not await b.take("alice:ssn", 3, limit=5, window=60)
    assert await b.take("alice:ssn", 2, limit=5, window=60)


@pytest.mark.parametrize(("count", "limit", "window"), [(-1, 5, 60), (1, 0, 60), (1, 5, 0)])
async def test_bad_arguments(tmp_path: Path, count: int, limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="ratelimit: count"):
        await SqliteRateLimiter(tmp_path / "rl.db").take("k", count, limit=limit, window=window)


async def test_unusable_file_fails_closed(tmp_path: Path) -> None:
    bad = tmp_path / "rl.db"
    bad.write_bytes(os.urandom(4096))  # not a database
    with pytest.raises(RateLimiterUnavailable):
        await SqliteRateLimiter(bad).take("k", 1, limit=5, window=60)
