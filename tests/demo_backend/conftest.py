"""Fixtures for the demo app: a real server on a free port and a settable clock.

Each client has no cookie jar: tests pass the session cookie of the user they
act as explicitly, so one server can serve alice, bob and carol side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from demo_backend.app import create_app

from tests.demo_backend.support import Client, Clock, MakeClient


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def make_client(data_dir: Path, clock: Clock) -> AsyncIterator[MakeClient]:
    """Start a demo app (same data dir and clock unless told otherwise) behind a real socket."""
    clients: list[Client] = []

    async def make(directory: Path | None = None, **options: object) -> Client:
        options.setdefault("now", clock)
        app = create_app(directory or data_dir, **options)  # type: ignore[arg-type]
        client: Client = TestClient(TestServer(app), cookie_jar=aiohttp.DummyCookieJar())
        clients.append(client)  # closed even when start-up fails
        await client.start_server()
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()
