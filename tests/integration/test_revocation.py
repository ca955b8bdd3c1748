"""Revocation is immediate on every replica: two gateway processes on one Redis session store."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis
from aiohttp import web

from tests.conftest import REDIS_URL, free_port
from tests.integration.conftest import Launcher
from tests.integration.process import wait_ready
from tests.proxy.session_backend import make_session_backend
from tests.proxy.test_sessions_http import ROUTES

pytestmark = pytest.mark.slow


@pytest.fixture
async def backend_with_login() -> AsyncIterator[tuple[str, bytes]]:
    secret = secrets.token_urlsafe(32).encode()
    runner = web.AppRunner(make_session_backend(secret), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", secret
    await runner.cleanup()


async def test_revoke_through_one_replica_is_seen_by_the_other(
    backend_with_login: tuple[str, bytes], launch: Launcher, tmp_path: Path, unique_prefix: str
) -> None:
    url, secret = backend_with_login
    secret_file = tmp_path / "login.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    sessions = (
        "sessions:\n"
        "  cookies: {access: tg-at, refresh: tg-rt, secure: false}\n"
        f"  login: {{route: login, secret_file: {secret_file}}}\n"
        f"  store: {{uri: '{REDIS_URL}', key_prefix: '{unique_prefix}:'}}\n"
    )
    shared = tmp_path / "shared-data"
    # Both replicas share the keyring (same data dir here; a Redis keyring store across hosts).
    a = launch(url, routes=ROUTES, extra=sessions, directory=tmp_path / "a", data_dir=shared)
    await wait_ready(a)
    b = launch(url, routes=ROUTES, extra=sessions, directory=tmp_path / "b", data_dir=shared)
    await wait_ready(b)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{a.url}/login", json={"user": "alice"}, headers={"Origin": a.url}) as r:
            assert r.status == 200
        token = next(c.value for c in s.cookie_jar if c.key == "tg-at")
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{b.url}/whoami", headers=bearer) as r:
            assert r.status == 200
        async with s.post(
            f"{a.url}/logout", headers={"Cookie": f"tg-at={token}", "Origin": a.url}
        ) as r:
            assert r.status == 200
        async with s.get(f"{b.url}/whoami", headers=bearer) as r:
            assert r.status == 401
    a.stop()
    b.stop()
    client = redis.from_url(REDIS_URL)
    try:
        async for key in client.scan_iter(match=f"{unique_prefix}:*"):
            await client.delete(key)
    finally:
        await client.aclose()
