"""The upstream pool: reloads keep warm sessions, retired ones close once idle."""

from __future__ import annotations

import asyncio

import aiohttp

from proxy.config import Upstream
from proxy.upstreams import UpstreamPool


def closed(session: aiohttp.ClientSession) -> bool:
    """A function, so mypy does not narrow ``.closed`` across the awaits below."""
    return session.closed


async def test_reload_keeps_unchanged_upstream_sessions_and_closes_retired_ones() -> None:
    pool = UpstreamPool()
    a = Upstream(url="http://127.0.0.1:1")
    pool.update({"a": a, "b": Upstream(url="http://127.0.0.1:2")})
    async with pool.use("a") as (session_a, _):
        async with pool.use("b") as (session_b, _):
            pool.update({"a": a})  # b removed while a request still uses it
            assert not closed(session_b)
        assert not closed(session_a)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert closed(session_b)  # closed once its last request finished
    await pool.close()
    assert closed(session_a)


async def test_a_request_that_fails_still_returns_its_lease() -> None:
    pool = UpstreamPool()
    pool.update({"b": Upstream(url="http://127.0.0.1:2")})
    try:
        async with pool.use("b") as (session_b, _):
            pool.update({})  # b retired while the failing request uses it
            raise RuntimeError("the request failed")
    except RuntimeError:
        pass
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert closed(session_b)
    await pool.close()
