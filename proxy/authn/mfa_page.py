"""The built-in step-up page: ``GET /.tokengate/mfa/step-up?return_to=...``.

Browser navigations that have a session but lack MFA, a fresh enough login
or the demanded acr are sent here (or to ``sessions.mfa.page``). The page
passes a TOTP code, a recovery code or a WebAuthn key through the existing
``/.tokengate/mfa/`` JSON endpoints, then goes back to ``return_to``.

Rules:
- ``return_to`` is followed only if it is a same-origin path: it starts with
  one ``/``, has no backslash, no control character, no scheme or host
  (no open redirect); anything else becomes ``/``. The page's script checks
  it again before navigating.
- The page has no inline script or style; its CSP allows only this origin's
  script, style and fetch, no framing, no plugins, no base or form targets
  elsewhere. Answers are ``no-store``; static assets are read once at import.
- A navigation without a live session goes to the login page instead (with
  the same ``return_to``); a refresh that happens here sets the new cookies.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web

from proxy.authn.gate import Gate
from proxy.authn.http import login_redirect_to, set_session_cookies
from proxy.errors import ProxyError

PAGE = "/.tokengate/mfa/step-up"
MAX_RETURN_TO = 2048
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_STATIC = resources.files("proxy").joinpath("static")
_HTML = _STATIC.joinpath("mfa-step-up.html").read_text(encoding="utf-8")
_JS = _STATIC.joinpath("mfa-step-up.js").read_bytes()
_CSS = _STATIC.joinpath("mfa-step-up.css").read_bytes()

Handler = Callable[[web.Request, Gate], Awaitable[web.StreamResponse]]


def safe_return_to(value: str | None) -> str:
    """``value`` if it is a same-origin path (``/x?y``), else ``/``."""
    if not value or len(value) > MAX_RETURN_TO:
        return "/"
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


async def step_up_page(request: web.Request, gate: Gate) -> web.StreamResponse:
    """The step-up page for a browser with a session; the login page without one."""
    service = gate.service
    if service is None or gate.mfa is None:
        raise ProxyError("not_found")
    return_to = safe_return_to(request.query.get("return_to"))
    cookies = service.config.cookies
    found = await service.authenticate(
        request.cookies.get(cookies.access), request.cookies.get(cookies.refresh)
    )
    if found is None:
        return login_redirect_to(return_to, service.config)
    body = _HTML.replace("__RETURN_TO__", html.escape(return_to, quote=True))
    resp = web.Response(
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={**_SECURITY, "Cache-Control": "no-store"},
    )
    if found.issued is not None:
        set_session_cookies(resp, found.issued, service.config)
    return resp


async def step_up_js(request: web.Request, gate: Gate) -> web.StreamResponse:
    """The page's script (no inline code anywhere)."""
    return web.Response(
        body=_JS,
        content_type="text/javascript",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


async def step_up_css(request: web.Request, gate: Gate) -> web.StreamResponse:
    """The page's stylesheet."""
    return web.Response(
        body=_CSS,
        content_type="text/css",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", PAGE, step_up_page),
    ("GET", f"{PAGE}.js", step_up_js),
    ("GET", f"{PAGE}.css", step_up_css),
]
