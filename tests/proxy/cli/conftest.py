"""Fixtures for the CLI tests: a key prefix on the shared Redis, cleaned after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis


@pytest.fixture
def redis_cleanup(redis_url: str, unique_prefix: str) -> Iterator[str]:
    """``<unique_prefix>:``; every key under it is deleted after the test."""
    prefix = f"{unique_prefix}:"
    yield prefix
    with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
