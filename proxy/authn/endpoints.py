"""The gateway's own endpoints on the public listener, under the reserved ``/.tokengate/`` prefix.

They are answered by the gateway and never forwarded, ahead of every route.
Each endpoint module lists its ``ROUTES`` as (method, path, handler); the
table below names the modules explicitly, so the whole surface is visible
here. Endpoints that change state check CSRF themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

from proxy.authn import mfa_page, mfa_routes, oidc_routes
from proxy.authn.gate import Gate
from proxy.authn.http import check_csrf, clear_session_cookies
from proxy.errors import ProxyError

PREFIX = "/.tokengate/"
Handler = Callable[[web.Request, Gate], Awaitable[web.StreamResponse]]


async def logout(request: web.Request, gate: Gate) -> web.StreamResponse:
    """End the caller's session (for logins the backend does not own, e.g. OIDC)."""
    service = gate.service
    if service is None:
        raise ProxyError("not_found")
    check_csrf(request, service.config)
    access = request.cookies.get(service.config.cookies.access)
    found = await service.authenticate(access, None) if access else None
    if found is not None:
        await service.logout(found.claims)
    resp = web.json_response({"status": "logged_out"}, headers={"Cache-Control": "no-store"})
    clear_session_cookies(resp, service.config)
    return resp


# Read once at import: a packaged static file, never read on the request path.
_DPOP_JS = resources.files("proxy").joinpath("static/dpop.js").read_bytes()


async def dpop_js(request: web.Request, gate: Gate) -> web.StreamResponse:
    """The browser helper that keeps a non-extractable key and adds DPoP proofs to fetch."""
    return web.Response(
        body=_DPOP_JS,
        content_type="text/javascript",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/.tokengate/dpop.js", dpop_js),
    ("POST", "/.tokengate/logout", logout),
    *mfa_routes.ROUTES,
    *mfa_page.ROUTES,
    *oidc_routes.ROUTES,
]
_TABLE: dict[tuple[str, str], Handler] = {(m, p): h for m, p, h in ROUTES}


async def dispatch(request: web.Request, gate: Gate) -> web.StreamResponse:
    """Answer a ``/.tokengate/...`` request, or 404/405 as the router would."""
    handler = _TABLE.get((request.method, request.path))
    # A non-default sessions.oidc.redirect_path (the config keeps it under /.tokengate/).
    oidc = gate.oidc
    if (
        handler is None
        and oidc is not None
        and request.method == "GET"
        and (request.path == oidc.config.redirect_path)
    ):
        handler = oidc_routes.callback
    if handler is not None:
        return await handler(request, gate)
    allowed = sorted(m for m, p in _TABLE if p == request.path)
    if allowed:
        raise ProxyError("method_not_allowed", headers={"Allow": ", ".join(allowed)})
    raise ProxyError("not_found")
