"""Sessions over HTTP: inbound identity stripping, token extraction, CSRF, route rules, cookies.

Rules:
- Every inbound ``Tokengate-*`` header and every configured identity header is
  removed before anything else, whatever its case and with ``_`` or ``-``:
  only the gateway speaks for the user to the backend.
- A bearer header wins over the access cookie. Cookie-authenticated unsafe
  requests must come from our own origin (``Origin``, else
  ``Sec-Fetch-Site``) or a configured allowed origin: CSRF is refused with 403.
- Route rules: no session -> 401 (browser navigations are redirected to the
  login page); missing role or claim -> 403; MFA, acr or freshness missing ->
  401 with the RFC 9470 step-up challenge (browser navigations are
  redirected to the MFA page, ``sessions.mfa.page``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from policy.model import AuthRule
from proxy.auth.access_token import AccessClaims
from proxy.auth.errors import StepUpRequired
from proxy.authn.config import SessionsConfig
from proxy.authn.origin import PUBLIC_ORIGIN
from proxy.authn.service import IssuedTokens
from proxy.errors import ProxyError

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
LOGIN_NONCE = "Tokengate-Login-Nonce"
LOGIN_ASSERTION = "Tokengate-Login"
LOGOUT = "Tokengate-Logout"


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


@functools.lru_cache(maxsize=16)
def _banned(extra: tuple[str, ...]) -> frozenset[str]:
    """The configured identity headers, normalised (once per configured tuple)."""
    return frozenset(_normal(h) for h in extra)


def strip_identity_headers(headers: CIMultiDict[str], extra: Iterable[str] = ()) -> None:
    """Remove every ``Tokengate-*`` and configured identity header, in any spelling."""
    banned = _banned(tuple(extra))
    doomed = [k for k in headers if (n := _normal(k)).startswith("tokengate-") or n in banned]
    for name in doomed:
        headers.popall(name, None)


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if that is the scheme used."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def own_origin(request: web.Request) -> str:
    """Our origin as the browser sees it (set by the handler from trusted forwarded headers)."""
    return request.get(PUBLIC_ORIGIN) or f"{request.scheme}://{request.host}".lower()


def check_csrf(request: web.Request, config: SessionsConfig) -> None:
    """Refuse unsafe cookie-authenticated requests from another origin."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin is not None:
        allowed = {own_origin(request), *(o.lower().rstrip("/") for o in config.allowed_origins)}
        if origin.lower().rstrip("/") in allowed:
            return
        raise ProxyError("csrf_refused", "origin not allowed")
    if request.headers.get("Sec-Fetch-Site", "").lower() in ("same-origin", "none"):
        return
    raise ProxyError("csrf_refused", "no same-origin evidence on an unsafe request")


def is_navigation(request: web.Request) -> bool:
    """A top-level browser navigation (a redirect helps it; a 401 would not)."""
    if request.method not in ("GET", "HEAD"):
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode.lower() == "navigate"
    return "text/html" in request.headers.get("Accept", "")


def login_redirect(request: web.Request, config: SessionsConfig) -> web.Response:
    """303 to the login page, remembering where the user was going (same-origin path only)."""
    return login_redirect_to(request.path_qs, config)


def login_redirect_to(return_to: str, config: SessionsConfig) -> web.Response:
    """303 to the login page with ``return_to`` (a same-origin path the caller checked)."""
    return _see_other(config.login_page, return_to)


def step_up_redirect(request: web.Request, config: SessionsConfig) -> web.Response:
    """303 to the MFA page (``sessions.mfa.page``), remembering where the user was going."""
    return _see_other(config.mfa.page, request.path_qs)


def _see_other(page: str, return_to: str) -> web.Response:
    target = f"{page}?return_to={quote(return_to, safe='')}"
    return web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})


def authorize(rule: AuthRule, claims: AccessClaims, *, now: float | None = None) -> None:
    """Raise when ``claims`` do not satisfy ``rule``; return quietly when they do."""
    now = time.time() if now is None else now
    if rule.roles and not set(rule.roles) & set(claims.roles):
        raise ProxyError("forbidden", "missing role")
    for name, expected in rule.claims.items():
        actual = claims.tenant if name == "tenant" else None
        if actual != expected:
            raise ProxyError("forbidden", f"claim {name} does not match")
    acr_values = (rule.acr,) if rule.acr else (("mfa",) if rule.mfa else ())
    if rule.mfa and "mfa" not in claims.amr:
        raise StepUpRequired("sessions: mfa required", acr_values=acr_values, max_age=_age(rule))
    if rule.acr and claims.acr != rule.acr:
        raise StepUpRequired("sessions: acr required", acr_values=acr_values, max_age=_age(rule))
    if rule.max_age is not None and now - claims.auth_time > rule.max_age:
        raise StepUpRequired(
            "sessions: authentication too old", acr_values=acr_values, max_age=_age(rule)
        )


def _age(rule: AuthRule) -> int | None:
    return int(rule.max_age) if rule.max_age is not None else None


def set_session_cookies(
    resp: web.StreamResponse, issued: IssuedTokens, config: SessionsConfig
) -> None:
    """Set the access (and, when rotated, refresh) cookies on ``resp``."""
    c = config.cookies
    common = {"httponly": True, "secure": c.secure, "samesite": c.same_site, "path": "/"}
    resp.set_cookie(c.access, issued.access, max_age=issued.access_max_age, **common)  # type: ignore[arg-type]
    if issued.refresh is not None:
        resp.set_cookie(c.refresh, issued.refresh, max_age=issued.refresh_max_age, **common)  # type: ignore[arg-type]


def clear_session_cookies(resp: web.StreamResponse, config: SessionsConfig) -> None:
    """Expire both session cookies."""
    c = config.cookies
    for name in (c.access, c.refresh):
        resp.del_cookie(name, path="/", secure=c.secure, httponly=True, samesite=c.same_site)
