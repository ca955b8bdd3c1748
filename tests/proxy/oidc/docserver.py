"""A tiny HTTP server whose JSON documents a test controls, counting requests.

Used for the cache and transport rules of discovery and JWKS (TTL, rate-limited
refetch, single flight, oversized or redirecting answers), which a real
provider cannot be made to misbehave for. The OIDC flow itself is tested
against the real provider process.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.conftest import free_port


@dataclass
class DocServer:
    url: str
    docs: dict[str, object] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def discovery(self, **changes: object) -> dict[str, object]:
        doc: dict[str, object] = {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/auth",
            "token_endpoint": self.url + "/token",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
        doc.update(changes)
        return {k: v for k, v in doc.items() if v is not None}


async def _handle(request: web.Request) -> web.StreamResponse:
    server: DocServer = request.app[SERVER]
    path = request.path
    server.hits[path] += 1
    if path in server.raw:
        return web.Response(body=server.raw[path], content_type="application/json")
    status = server.status.get(path, 200)
    if status in (301, 302, 307):
        raise web.HTTPFound(server.url + "/elsewhere")
    if path not in server.docs:
        return web.Response(status=404)
    return web.Response(
        status=status, text=json.dumps(server.docs[path]), content_type="application/json"
    )


SERVER = web.AppKey("server", DocServer)


@asynccontextmanager
async def serve() -> AsyncIterator[DocServer]:
    """Run a DocServer on a free loopback port."""
    port = free_port()
    server = DocServer(f"http://127.0.0.1:{port}")
    app = web.Application()
    app[SERVER] = server
    app.router.add_route("*", "/{tail:.*}", _handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield server
    finally:
        await runner.cleanup()
