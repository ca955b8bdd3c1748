"""``add_admin_api``: the session administration routes on the admin listener.

Routes live under ``/.tokengate/admin/`` and are listed once, in
:data:`OPERATIONS`, with the weakest role allowed to call each (the OpenAPI
document in :mod:`proxy.adminapi.openapi` must say the same; a test checks).
Every route goes through :func:`guarded`, which, in this order: gives the
request an id, authenticates the bearer key (401 + ``WWW-Authenticate``),
checks its role (403), runs the view, and turns every failure into the fixed
JSON error body. Refusals are audited as ``admin.auth_failed`` with the key's
name when known, never the key. The token routes
(:mod:`proxy.adminapi.token_api`) go through the same :func:`guarded`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from audit.auditor import Auditor
from audit.errors import AuditError
from audit.schema import AuditValue
from proxy import errors as proxy_errors
from proxy.adminapi import views
from proxy.adminapi.acts import Actor, SessionAdmin
from proxy.adminapi.auth import authenticate, authorize
from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.errors import AdminApiError, AuthFailed, RoleTooWeak
from proxy.adminapi.keys import ApiKey, KeyTable, Role
from proxy.adminapi.openapi import API, PREFIX
from proxy.headers import request_id
from proxy.sessions.store import SessionStore
from proxy.state import REQUEST_ID
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.adminapi")
REALM: Final = 'Bearer realm="tokengate-admin"'


@dataclass(frozen=True, slots=True)
class Operation:
    """One route: method, path template, OpenAPI operationId, weakest role, view."""

    method: str
    path: str
    operation_id: str
    role: Role
    view: views.View


OPERATIONS: Final = (
    Operation("GET", f"{API}/users/{{sub}}/sessions", "listUserSessions", Role.AUDITOR,
              views.list_sessions),
    Operation("POST", f"{API}/users/{{sub}}/sessions/{{sid_hash}}/revoke", "revokeListedSession",
              Role.OPERATOR, views.revoke_listed),
    Operation("POST", f"{API}/sessions/{{sid}}/revoke", "revokeSession", Role.OPERATOR,
              views.revoke_session),
    Operation("POST", f"{API}/users/{{sub}}/revoke", "revokeUserSessions", Role.OPERATOR,
              views.revoke_user),
    Operation("POST", f"{API}/sessions/revoke-all", "revokeAllSessions", Role.ADMIN,
              views.revoke_all),
    Operation("GET", f"{PREFIX}/openapi.json", "getOpenApiDocument", Role.AUDITOR,
              views.openapi),
)  # fmt: skip


ConfigSource = AdminApiConfig | Callable[[], AdminApiConfig]


class LiveKeys:
    """The key table of the current config, rebuilt only when a reload swapped the config."""

    def __init__(self, source: ConfigSource) -> None:
        self._source = source
        self._config: AdminApiConfig | None = None
        self._table = KeyTable(())

    def current(self) -> KeyTable | None:
        """The table to check keys against; None once a reload disabled the API."""
        config = self._source() if callable(self._source) else self._source
        if config is not self._config:
            self._config, self._table = config, config.key_table()
        return self._table if config.enabled else None


@dataclass(frozen=True, slots=True)
class _Deps:
    keys: LiveKeys
    admin: SessionAdmin
    auditor: Auditor


Run = Callable[[web.Request, Actor, str], Awaitable[web.StreamResponse]]


def add_admin_api(
    app: web.Application,
    *,
    config: ConfigSource,
    store: SessionStore,
    auditor: Auditor,
    clock: Callable[[], float] = time.time,
) -> None:
    """Register the admin API on ``app`` (nothing when the config says ``enabled: false``).

    ``config`` is the ``admin.api`` section, or a callable returning the current
    one (e.g. ``lambda: live.settings.gateway.admin.api``) so that a reload that
    removes a key or disables the API takes effect on the next request.
    ``store`` is opened and closed by the caller; ``auditor`` is the gateway's
    audit log. Call before the app starts: it also adds a middleware that
    answers unknown routes and methods under the prefix with JSON errors.
    """
    keys = LiveKeys(config)
    if keys.current() is None:
        return
    deps = _Deps(keys, SessionAdmin(store, auditor, clock=clock), auditor)
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, _endpoint(op, deps))
    app.middlewares.append(_json_refusals)


def _endpoint(op: Operation, deps: _Deps) -> Handler:
    """The handler of a session operation."""

    async def run(request: web.Request, actor: Actor, rid: str) -> web.StreamResponse:
        return await op.view(views.Call(request, actor, deps.admin, rid))

    return guarded(op.operation_id, op.role, deps.keys, deps.auditor, run)


def _rid(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = request[REQUEST_ID] = request_id(request.headers.get("X-Request-ID"))
    return rid


def guarded(operation_id: str, role: Role, keys: LiveKeys, auditor: Auditor, run: Run) -> Handler:
    """A handler that authenticates, authorizes ``role``, calls ``run``, maps failures."""

    async def handle(request: web.Request) -> web.StreamResponse:
        rid = _rid(request)
        table = keys.current()
        if table is None:  # disabled by a reload since start
            return proxy_errors.error_response("not_found", rid)
        try:
            key = authenticate(request.headers.getall(hdrs.AUTHORIZATION, []), table)
        except AuthFailed as e:
            await _audit_refusal(auditor, request, (operation_id, role), rid, e.reason, None)
            challenge = REALM if e.reason == "missing" else f'{REALM}, error="invalid_token"'
            return _error(e, rid, {hdrs.WWW_AUTHENTICATE: challenge})
        try:
            authorize(key, role)
        except RoleTooWeak as e:
            refused = (operation_id, role)
            await _audit_refusal(auditor, request, refused, rid, "insufficient_role", key)
            return _error(e, rid, {hdrs.WWW_AUTHENTICATE: f'{REALM}, error="insufficient_scope"'})
        actor = Actor(f"apikey:{key.name}", key.role, rid)
        try:
            return await run(request, actor, rid)
        except Exception as e:  # every failure answers a fixed JSON body: fail closed
            return _failure(e, rid)

    return handle


def _failure(e: Exception, rid: str) -> web.Response:
    """The JSON error for a failed view; details go to the log, never to the caller."""
    if isinstance(e, AdminApiError):
        return _error(e, rid)
    if isinstance(e, AuditError):
        log.warning("admin: act refused, audit unavailable: %s", e, extra={"request_id": rid})
        return proxy_errors.error_response(
            "audit_unavailable",
            rid,
            status=503,
            message="admin: the audit log cannot record this act, so it was not performed",
        )
    if isinstance(e, GatewayError):
        log.warning("admin: failed closed: %s", e, extra={"request_id": rid})
        message = str(e) if e.public else "admin: a dependency cannot answer; retry later"
        return proxy_errors.error_response(e.code, rid, status=e.status, message=message)
    log.error("admin: unexpected error", exc_info=e, extra={"request_id": rid})
    return proxy_errors.error_response("internal_error", rid)


def _error(e: AdminApiError, rid: str, headers: dict[str, str] | None = None) -> web.Response:
    return proxy_errors.error_response(
        e.code, rid, status=e.status, message=str(e), headers=headers
    )


async def _audit_refusal(
    auditor: Auditor,
    request: web.Request,
    op: tuple[str, Role],
    rid: str,
    reason: str,
    key: ApiKey | None,
) -> None:
    """Record a refused call to ``op`` (id, role); the refusal stands even if not recorded."""
    operation_id, required = op
    try:
        fields: dict[str, AuditValue] = {"reason": reason, "required_role": required.value}
        if key is not None:
            fields.update(key_name=key.name, role=key.role.value)
        if request.remote:
            fields["peer"] = request.remote[:64]
        await auditor.emit("admin.auth_failed", operation=operation_id, request_id=rid, **fields)
    except AuditError as e:
        log.warning("admin: refusal not recorded: %s", e, extra={"request_id": rid})


@web.middleware
async def _json_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown routes and methods under the admin prefix answer the JSON error body too."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400 or not request.path.startswith(PREFIX + "/"):
            raise
        codes = {404: "not_found", 405: "method_not_allowed"}
        allow = e.headers.get(hdrs.ALLOW)
        headers = {"Allow": allow} if allow is not None else None
        code = codes.get(e.status, "bad_request")
        return proxy_errors.error_response(code, _rid(request), status=e.status, headers=headers)
