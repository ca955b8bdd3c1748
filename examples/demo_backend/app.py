"""Assembles the demo app: middlewares, routes, static files and start-up.

``create_app(data_dir)`` is all a caller needs; the data dir (created 0700 when
missing) holds the SQLite file ``demo.sqlite3`` and the session secret.
:class:`TokengateOptions` adds what an app behind tokengate needs: the login
assertion and the check of tokengate's request proofs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from demo_backend.handlers import STATIC_DIR, routes
from demo_backend.jwks import JwksCache, check_jwks_url
from demo_backend.login_assertion import LoginAsserter, load_login_secret
from demo_backend.middleware import json_errors, security_headers
from demo_backend.sessions import SessionSigner, load_or_create_secret
from demo_backend.state import STATE, DemoState
from demo_backend.store import DemoStore
from demo_backend.validation import MAX_BODY_BYTES

DB_FILE = "demo.sqlite3"
DEFAULT_SESSION_TTL = 8 * 3600


@dataclass(frozen=True, slots=True)
class TokengateOptions:
    """How the app works behind tokengate; the defaults change nothing.

    ``login_secret_file``: the HS256 secret shared with the gateway; with it a
    login carrying ``Tokengate-Login-Nonce`` is answered with ``Tokengate-Login``.
    ``jwks_url``: the gateway's ``/.well-known/tokengate/jwks.json``; with it
    every request but ``GET /healthz`` must carry a valid tokengate proof.
    ``audience``: the ``aud`` of the login assertion (the gateway).
    ``identity_audience``: the ``aud`` the identity token must carry (this app).
    """

    login_secret_file: Path | None = None
    jwks_url: str | None = None
    audience: str = "tokengate"
    identity_audience: str = "demo-app"

    def __post_init__(self) -> None:
        if self.jwks_url is not None:
            check_jwks_url(self.jwks_url)
        if not self.audience or not self.identity_audience:
            raise ValueError("demo_backend: audiences must not be empty")


def create_app(
    data_dir: Path,
    *,
    now: Callable[[], float] = time.time,
    session_ttl: int = DEFAULT_SESSION_TTL,
    cookie_secure: bool = False,
    tokengate: TokengateOptions | None = None,
) -> web.Application:
    """The demo app over ``data_dir``.

    ``now`` is the clock (epoch seconds) used for sessions, timestamps and
    proof checks; ``cookie_secure`` adds the Secure flag to the session cookie
    (set it when the app is served over HTTPS).
    """
    options = tokengate or TokengateOptions()
    middlewares: list[Middleware] = [security_headers, json_errors]
    if options.jwks_url is not None:
        # Imported only when asked for: it needs the http-message-signatures package.
        from demo_backend import request_proof

        middlewares.append(request_proof.request_proof_middleware())
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app.add_routes(routes)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)

    async def open_state(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(data_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
        secret = await asyncio.to_thread(load_or_create_secret, data_dir)
        asserter = None
        if options.login_secret_file is not None:
            login_secret = await asyncio.to_thread(load_login_secret, options.login_secret_file)
            asserter = LoginAsserter(login_secret, audience=options.audience)
        store = DemoStore(data_dir / DB_FILE)
        await store.open()
        app[STATE] = DemoState(
            store=store,
            signer=SessionSigner(secret),
            now=now,
            session_ttl=session_ttl,
            cookie_secure=cookie_secure,
            login_asserter=asserter,
        )
        yield

    app.cleanup_ctx.append(open_state)
    if options.jwks_url is not None:
        app.cleanup_ctx.append(_proof_context(options.jwks_url, options.identity_audience, now))
    return app


def _proof_context(
    jwks_url: str, identity_audience: str, now: Callable[[], float]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Start-up step fetching the gateway's JWKS (the app will not start without it)."""
    from demo_backend import request_proof

    async def open_proof(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            jwks = JwksCache(url=jwks_url, session=session, now=now)
            await jwks.load()
            app[request_proof.PROOF] = request_proof.RequestProof(
                jwks=jwks, identity_audience=identity_audience, now=now
            )
            yield

    return open_proof
