"""``add_token_api``: tokenize, detokenize and delete by field class on the admin listener.

Routes (listed once in :data:`TOKEN_OPERATIONS`, documented in the OpenAPI
document with the same roles; a test checks):

- ``POST /.tokengate/admin/v1/tokens/tokenize`` (operator and up):
  ``{class, values[], owner?, tenant?}`` -> one ``{token}`` or ``{error}`` per value;
- ``POST .../tokens/detokenize`` (admin): ``{class, tokens[]}`` -> one
  ``{value, record_id, owner, tenant, created, expires}`` or ``{error, record_id?}``
  per token;
- ``POST .../tokens/delete`` (admin): ``{class, tokens[]}`` -> ``{count, deleted}``.

Each goes through :func:`proxy.adminapi.app.guarded` (key, role, fixed JSON
errors, refusals audited) and :class:`~proxy.adminapi.token_acts.TokenAdmin`
(audited first). Answers carry ``Cache-Control: no-store``: they hold values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final

from aiohttp import web
from pydantic import Field

from audit.auditor import Auditor
from policy.fields import CLASS_NAME
from policy.types import StrictModel
from proxy.adminapi.acts import Actor
from proxy.adminapi.app import ConfigSource, LiveKeys, guarded
from proxy.adminapi.bodies import REASON_PATTERN, read_body
from proxy.adminapi.keys import Role
from proxy.adminapi.openapi import API
from proxy.adminapi.token_acts import TokenAdmin
from proxy.adminapi.token_service import TokenService
from vault.api import Revealed

MAX_ITEMS: Final = 500
MAX_VALUE: Final = 4096
MAX_TOKEN: Final = 256

_ClassName = Annotated[str, Field(pattern=CLASS_NAME.pattern, description="a declared field class")]
_Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN)]


class TokenizeBody(StrictModel):
    """Values of one class to tokenize, and the metadata bound into their records."""

    field_class: _ClassName = Field(alias="class")
    values: list[Annotated[str, Field(min_length=1, max_length=MAX_VALUE)]] = Field(
        min_length=1, max_length=MAX_ITEMS, description="the plaintext values"
    )
    owner: str | None = Field(
        None, min_length=1, max_length=1024, pattern=REASON_PATTERN, description="record owner"
    )
    tenant: str = Field("", max_length=256, pattern=REASON_PATTERN, description="record tenant")


class TokensBody(StrictModel):
    """Tokens of one class to detokenize or erase."""

    field_class: _ClassName = Field(alias="class")
    tokens: list[_Token] = Field(min_length=1, max_length=MAX_ITEMS, description="the tokens")


@dataclass(frozen=True, slots=True)
class TokenCall:
    """One authorized token request."""

    request: web.Request
    actor: Actor
    admin: TokenAdmin
    request_id: str


TokenView = Callable[[TokenCall], Awaitable[web.Response]]


def _answer(call: TokenCall, body: dict[str, object]) -> web.Response:
    headers = {"Cache-Control": "no-store", "X-Request-ID": call.request_id}
    return web.json_response(body, headers=headers)


def _time(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


async def tokenize(call: TokenCall) -> web.Response:
    """POST tokens/tokenize."""
    body = await read_body(call.request, TokenizeBody)
    out = await call.admin.tokenize(
        call.actor, body.field_class, body.values, owner=body.owner, tenant=body.tenant
    )
    results: list[dict[str, object]] = [
        {"token": t} if isinstance(t, str) else {"error": "format_mismatch"} for t in out
    ]
    return _answer(call, {"class": body.field_class, "results": results})


async def detokenize(call: TokenCall) -> web.Response:
    """POST tokens/detokenize."""
    body = await read_body(call.request, TokensBody)
    out = await call.admin.detokenize(call.actor, body.field_class, body.tokens)
    results: list[dict[str, object]] = []
    for r in out:
        if isinstance(r, Revealed):
            info = r.record
            results.append(
                {
                    "value": r.value,
                    "record_id": r.id_hash,
                    "owner": info.owner,
                    "tenant": info.tenant,
                    "created": _time(info.created),
                    "expires": _time(info.expires),
                }
            )
        else:
            results.append({"error": r.reason, "record_id": r.id_hash})
    return _answer(call, {"class": body.field_class, "results": results})


async def delete(call: TokenCall) -> web.Response:
    """POST tokens/delete."""
    body = await read_body(call.request, TokensBody)
    deleted = await call.admin.delete(call.actor, body.field_class, body.tokens)
    return _answer(call, {"class": body.field_class, "count": len(body.tokens), "deleted": deleted})


@dataclass(frozen=True, slots=True)
class TokenOperation:
    """One token route: method, path, OpenAPI operationId, weakest role, view."""

    method: str
    path: str
    operation_id: str
    role: Role
    view: TokenView


TOKEN_OPERATIONS: Final = (
    TokenOperation("POST", f"{API}/tokens/tokenize", "tokenizeValues", Role.OPERATOR, tokenize),
    TokenOperation("POST", f"{API}/tokens/detokenize", "detokenizeTokens", Role.ADMIN, detokenize),
    TokenOperation("POST", f"{API}/tokens/delete", "deleteTokens", Role.ADMIN, delete),
)


def add_token_api(
    app: web.Application,
    *,
    config: ConfigSource,
    service: TokenService,
    auditor: Auditor,
) -> None:
    """Register the token routes on ``app`` (nothing when the admin API is disabled).

    Call after :func:`~proxy.adminapi.app.add_admin_api` with the same
    ``config`` and ``auditor`` (that call adds the JSON answers for unknown
    routes under the prefix). ``service`` is the running gateway's vault by
    class name (:class:`~proxy.adminapi.token_service.VaultTokenService`).
    """
    keys = LiveKeys(config)
    if keys.current() is None:
        return
    admin = TokenAdmin(service, auditor)
    for op in TOKEN_OPERATIONS:
        app.router.add_route(op.method, op.path, _handler(op, keys, auditor, admin))


def _handler(
    op: TokenOperation, keys: LiveKeys, auditor: Auditor, admin: TokenAdmin
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    view = op.view

    async def run(request: web.Request, actor: Actor, rid: str) -> web.StreamResponse:
        return await view(TokenCall(request, actor, admin, rid))

    return guarded(op.operation_id, op.role, keys, auditor, run)
