"""Assembles the demo app: middlewares, routes, static files and start-up.

``create_app(data_dir)`` is all a caller needs; the data dir (created 0700 when
missing) holds the SQLite file ``demo.sqlite3`` and the session secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from demo_backend.handlers import STATIC_DIR, routes
from demo_backend.middleware import json_errors, security_headers
from demo_backend.sessions import SessionSigner, load_or_create_secret
from demo_backend.state import STATE, DemoState
from demo_backend.store import DemoStore
from demo_backend.validation import MAX_BODY_BYTES

DB_FILE = "demo.sqlite3"
DEFAULT_SESSION_TTL = 8 * 3600


def create_app(
    data_dir: Path,
    *,
    now: Callable[[], float] = time.time,
    session_ttl: int = DEFAULT_SESSION_TTL,
    cookie_secure: bool = False,
) -> web.Application:
    """The demo app over ``data_dir``.

    ``now`` is the clock (epoch seconds) used for sessions and timestamps;
    ``cookie_secure`` adds the Secure flag to the session cookie (set it when
    the app is served over HTTPS).
    """
    app = web.Application(
        middlewares=[security_headers, json_errors],
        client_max_size=MAX_BODY_BYTES,
    )
    app.add_routes(routes)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)

    async def open_state(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(data_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
        secret = await asyncio.to_thread(load_or_create_secret, data_dir)
        store = DemoStore(data_dir / DB_FILE)
        await store.open()
        app[STATE] = DemoState(
            store=store,
            signer=SessionSigner(secret),
            now=now,
            session_ttl=session_ttl,
            cookie_secure=cookie_secure,
        )
        yield

    app.cleanup_ctx.append(open_state)
    return app
