"""Store URIs for the real backends (file, shared Redis, shared PostgreSQL) and their cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as redis

BACKENDS = ("file", "redis", "postgres")


def store_uri(
    backend: str, *, tmp_path: Path, redis_url: str, prefix: str, pg: tuple[str, str]
) -> str:
    """A keyring store URI private to one test."""
    if backend == "file":
        return f"file:{tmp_path / 'store' / 'keyring.json'}"
    if backend == "redis":
        return f"{redis_url}?prefix={prefix}:"
    url, schema = pg
    return f"{url}?schema={schema}"


@asynccontextmanager
async def redis_cleanup(redis_url: str, prefix: str) -> AsyncIterator[None]:
    """Delete every key under ``prefix`` afterwards."""
    try:
        yield
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
