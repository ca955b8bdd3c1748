"""The OIDC login endpoints: start a login at the provider, finish it at the callback.

Rules:
- ``GET /.tokengate/oidc/login?return_to=/path`` answers 303 to the provider's
  authorization URL and sets the sealed flow cookie (``__Host-tg-oidc`` when
  cookies are Secure, else ``tg-oidc``; HttpOnly, SameSite=Lax so the
  provider's top-level redirect back carries it, Path=/). The return path is
  restricted by the relying party to a same-origin relative path.
- The redirect URI is built from the origin the browser used: the request's
  scheme and Host, or ``X-Forwarded-Proto``/``-Host`` when the TCP peer is a
  configured trusted proxy (a TLS-terminating ingress), never otherwise.
- ``GET`` on the callback path finishes the flow, creates the session
  (audited by the session service), sets the session cookies, clears the flow
  cookie and answers 303 to the return path.
- Any failure clears the flow cookie, is audited as ``session.login_failed``
  with a fixed reason word, and answers the fixed JSON error: 401
  ``login_failed``, or 503 when the provider is unavailable. Provider text
  never reaches the client or the audit log.
- Without an ``oidc:`` section both endpoints answer 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

from proxy.authn import origin
from proxy.authn.http import set_session_cookies
from proxy.authn.service import SessionService
from proxy.errors import ProxyError, error_response
from proxy.oidc.config import DEFAULT_REDIRECT_PATH
from proxy.oidc.errors import OidcError
from proxy.oidc.flow import OidcRelyingParty
from proxy.sessions.model import SessionGrant
from proxy.state import LIVE, REQUEST_ID

if TYPE_CHECKING:
    from proxy.authn.endpoints import Handler
    from proxy.authn.gate import Gate

LOGIN_PATH: Final = "/.tokengate/oidc/login"
FLOW_COOKIE: Final = "tg-oidc"
SECURE_FLOW_COOKIE: Final = "__Host-tg-oidc"
# Relying-party error code -> the fixed word audited for it.
_REASONS: Final = {
    "oidc_invalid_state": "state_mismatch",
    "oidc_invalid_flow": "flow_invalid",
    "oidc_provider_error": "provider_refused",
    "oidc_unavailable": "provider_unavailable",
    "invalid_token": "id_token_invalid",
}


def flow_cookie_name(service: SessionService) -> str:
    """The flow cookie's name: ``__Host-`` only where the cookie can be Secure."""
    return SECURE_FLOW_COOKIE if service.config.cookies.secure else FLOW_COOKIE


def _configured(gate: Gate) -> tuple[SessionService, OidcRelyingParty]:
    if gate.service is None or gate.oidc is None:
        raise ProxyError("not_found")
    return gate.service, gate.oidc


def public_origin(request: web.Request) -> str:
    """The browser's view of our origin (see :mod:`proxy.authn.origin`)."""
    return origin.public_origin(request, request.app[LIVE].settings.gateway.trusted_proxies)


async def login(request: web.Request, gate: Gate) -> web.StreamResponse:
    """Start an OIDC login: 303 to the provider with the sealed flow cookie."""
    service, oidc = _configured(gate)
    try:
        begun = await oidc.start(
            origin=public_origin(request), return_to=request.query.get("return_to")
        )
    except ValueError as e:
        raise ProxyError("bad_request", "oidc: origin not usable") from e
    except OidcError as e:
        code = "service_unavailable" if e.status == 503 else "login_failed"
        raise ProxyError(code, f"oidc: login start failed ({e.reason})") from e
    resp = web.Response(
        status=303, headers={"Location": begun.authorization_url, "Cache-Control": "no-store"}
    )
    resp.set_cookie(
        flow_cookie_name(service),
        begun.cookie_value,
        max_age=begun.cookie_max_age,
        path="/",
        secure=service.config.cookies.secure,
        httponly=True,
        samesite="Lax",
    )
    return resp


async def callback(request: web.Request, gate: Gate) -> web.StreamResponse:
    """Finish an OIDC login: create the session and send the browser back where it was going."""
    service, oidc = _configured(gate)
    if request.path != oidc.config.redirect_path:
        raise ProxyError("not_found")
    name = flow_cookie_name(service)
    try:
        result = await oidc.callback(query=request.query_string, cookie=request.cookies.get(name))
    except OidcError as e:
        await service.auditor.emit(
            "session.login_failed", method="oidc", reason=_REASONS.get(e.code, "login_failed")
        )
        code = "service_unavailable" if e.status == 503 else "login_failed"
        resp = error_response(code, request[REQUEST_ID])
        _clear_flow_cookie(resp, service)
        return resp
    who = result.identity
    grant = SessionGrant(
        sub=who.sub,
        tenant=who.tenant,
        roles=who.roles,
        amr=who.amr,
        acr=who.acr,
        auth_time=who.auth_time,
    )
    issued = await service.create_session(grant, method="oidc")
    resp = web.Response(
        status=303, headers={"Location": result.return_to, "Cache-Control": "no-store"}
    )
    set_session_cookies(resp, issued, service.config)
    _clear_flow_cookie(resp, service)
    return resp


def _clear_flow_cookie(resp: web.StreamResponse, service: SessionService) -> None:
    resp.del_cookie(
        flow_cookie_name(service),
        path="/",
        secure=service.config.cookies.secure,
        httponly=True,
        samesite="Lax",
    )


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", LOGIN_PATH, login),
    ("GET", DEFAULT_REDIRECT_PATH, callback),
]
