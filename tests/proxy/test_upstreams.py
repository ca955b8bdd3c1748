"""The upstream pool: reloads keep warm sessions, retired ones close once idle."""

from __future__ import annotations

import asyncio

from proxy.config import Upstream
from proxy.upstreams import UpstreamPool


async def test_reload_keeps_unchanged_upstream_sessions_and_closes_retired_ones() -> None:
    pool = UpstreamPool()
    a = Upstream(url="http://127.0.0.1:1")
    pool.update({"a": a, "b": Upstream(url="http://127.0.0.1:2")})
    async with pool.use("a") as (session_a, _):
        async with pool.use("b") as (session_b, _):
            pool.update({"a": a})  # b removed while a request still uses it
            assert not session_b.closed
        assert not session_a.closed
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert session_b.closed  # closed once its last request finished
    await pool.close()
    assert session_a.closed
