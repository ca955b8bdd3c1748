"""The demo app's typed application state, shared by the handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from demo_backend.sessions import SessionSigner
from demo_backend.store import DemoStore


@dataclass(frozen=True, slots=True)
class DemoState:
    """What every handler needs; built once at start-up."""

    store: DemoStore
    signer: SessionSigner
    now: Callable[[], float]
    session_ttl: int
    cookie_secure: bool


STATE = web.AppKey("demo_backend_state", DemoState)
