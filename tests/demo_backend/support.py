"""Helpers shared by the demo app's tests: a settable clock, logins, request bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.test_utils import TestClient
from demo_backend.sessions import COOKIE_NAME

START = 1_800_000_000.0

type Client = TestClient[aiohttp.web.Request, aiohttp.web.Application]
type MakeClient = Callable[..., Awaitable[Client]]


class Clock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def login(client: Client, username: str, password: str | None = None) -> dict[str, str]:
    """Log in and return the header that carries the session cookie."""
    resp = await client.post(
        "/login", json={"username": username, "password": password or username}
    )
    assert resp.status == 200, await resp.text()
    return {"Cookie": f"{COOKIE_NAME}={resp.cookies[COOKIE_NAME].value}"}


def record_body(**overrides: object) -> dict[str, object]:
    """A valid create/update body, with any field replaced."""
    body: dict[str, object] = {
        "name": "Ann Example",
        "email": "ann@example.com",
        "ssn": "078-05-1120",
        "card_number": "4111111111111111",
    }
    body.update(overrides)
    return body
