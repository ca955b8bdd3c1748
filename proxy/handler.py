"""The catch-all request handler: match a route, then forward or relay a WebSocket."""

from __future__ import annotations

import functools

from aiohttp import web
from yarl import URL

from policy.compile import RouteFields
from policy.routing import NoRoute
from proxy.auth.access_token import AccessClaims
from proxy.authn import endpoints
from proxy.authn.http import set_session_cookies
from proxy.authn.origin import PUBLIC_ORIGIN, public_origin
from proxy.errors import ProxyError
from proxy.fields import FieldFilter, action_context
from proxy.forward import ForwardPlan, forward
from proxy.headers import is_trusted
from proxy.paths import unsafe_target
from proxy.state import FIELDS, FINISH, GATE, KEYS, LIVE, REQUEST_ID, ROUTE_NAME, UPSTREAMS
from proxy.websocket import is_websocket, relay_websocket

# Reserved on the public listener, ahead of every route: the public keys that
# verify the gateway's signatures toward the backend (upstream-signing only).
JWKS_PATH = "/.well-known/tokengate/jwks.json"


@functools.lru_cache(maxsize=256)
def _authority(url: str) -> str:
    """host[:port] of an upstream URL (parsed once per URL, not per request)."""
    return URL(url).raw_authority


def _field_filter(
    request: web.Request,
    fields: RouteFields | None,
    route: str,
    claims: AccessClaims | None,
    limit: int,
) -> FieldFilter | None:
    """The field rules of ``route`` for this request, or None when it has none."""
    if fields is None:
        return None
    runtime = request.app.get(FIELDS)
    if runtime is None:  # field rules but no vault: never forward untransformed (fail closed)
        raise ProxyError("service_unavailable", "field rules need the vault")
    ctx = action_context(
        runtime, fields, route=route, claims=claims, request_id=request[REQUEST_ID]
    )
    return FieldFilter(fields, ctx, limit=limit)


async def handle(request: web.Request) -> web.StreamResponse:
    """Route ``request`` and send it on; every refusal raises ProxyError."""
    app = request.app
    settings = app[LIVE].settings
    keys = app[KEYS]
    if keys.is_sealed:
        # Sealed: no key material in memory, so nothing is served (fail closed).
        raise ProxyError("service_unavailable", "keyring sealed")
    raw_path = request.raw_path
    if (why := unsafe_target(raw_path)) is not None:
        raise ProxyError("bad_request", why)
    path = request.path
    if path == JWKS_PATH:
        return web.json_response(
            keys.jwks("upstream-signing"), headers={"Cache-Control": "max-age=300"}
        )
    gw = settings.gateway
    request[PUBLIC_ORIGIN] = public_origin(request, gw.trusted_proxies)
    if path.startswith(endpoints.PREFIX):
        return await endpoints.dispatch(request, app[GATE])
    found = settings.router.match_memo(request.host.split(":", 1)[0], request.method, path)
    if isinstance(found, NoRoute):
        if found.allowed:
            raise ProxyError(
                "method_not_allowed", headers={"Allow": ", ".join(sorted(found.allowed))}
            )
        raise ProxyError("not_found")
    route = found.route
    request[ROUTE_NAME] = route.name
    upstream_name = settings.route_upstream[route.name]
    async with app[UPSTREAMS].use(upstream_name) as (session, upstream):
        authority = _authority(upstream.url)
        admitted = await app[GATE].admit(
            request,
            route,
            audience=upstream.audience or upstream_name,
            authority=authority,
        )
        if isinstance(admitted, web.StreamResponse):
            return admitted
        if admitted.issued is not None and admitted.service is not None:
            issued, cfg = admitted.issued, admitted.service.config
            request[FINISH] = lambda resp: set_session_cookies(resp, issued, cfg)
        body_limit = int(route.max_body if route.max_body is not None else gw.limits.max_body)
        plan = ForwardPlan(
            base_url=upstream.url,
            target=raw_path,
            upstream_host=authority,
            body_limit=body_limit,
            connect_timeout=route.timeouts.connect or upstream.connect_timeout,
            read_timeout=route.timeouts.read or upstream.read_timeout,
            trusted_peer=is_trusted(request.remote, gw.trusted_proxies),
            request_id=request[REQUEST_ID],
            hooks=admitted,
            filter=_field_filter(
                request,
                settings.route_fields.get(route.name),  # the snapshot this request started with
                route.name,
                admitted.claims,
                body_limit,
            ),
        )
        if is_websocket(request):
            if not route.websocket:
                raise ProxyError("websocket_not_allowed")
            return await relay_websocket(request, session, plan)
        return await forward(request, session, plan)
