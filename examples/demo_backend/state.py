"""The demo app's typed application and request state, shared by the handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from demo_backend.login_assertion import LoginAsserter
from demo_backend.sessions import SessionSigner
from demo_backend.store import Account, DemoStore


@dataclass(frozen=True, slots=True)
class DemoState:
    """What every handler needs; built once at start-up.

    ``login_asserter`` is set when the app shares a login secret with tokengate.
    """

    store: DemoStore
    signer: SessionSigner
    now: Callable[[], float]
    session_ttl: int
    cookie_secure: bool
    login_asserter: LoginAsserter | None = None


@dataclass(frozen=True, slots=True)
class Vouched:
    """Who tokengate says sent a request whose proof verified: a user, or nobody (anonymous)."""

    account: Account | None


STATE = web.AppKey("demo_backend_state", DemoState)
# Set only when tokengate's request proofs are verified (and then on every request).
VOUCHED = web.RequestKey("demo_backend_vouched", Vouched)
