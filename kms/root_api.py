"""The root operations' HTTP routes (docs/tee-protocol.md, "Root operations for gateways").

``add_root_routes(app, service, authenticate)`` adds four POST routes; each
needs a credential with the ``gateway`` role and acts for that credential's
id only (a gateway can never reach another's KWKs):

| route | body | answer |
| --- | --- | --- |
| ``/v1/root/kwks`` | ``{version}`` | ``{key, reference}`` |
| ``/v1/root/kwks/open`` | ``{version, reference}`` | ``{key}`` |
| ``/v1/root/kwks/destroy`` | ``{version, reference}`` | ``{}`` |
| ``/v1/root/random`` | ``{n}`` (1..1024) | ``{bytes}`` |

Bytes are base64url without padding, decoded strictly. A body is one JSON
object of at most 4 KiB with exactly the listed members (duplicates, NaN and
unknown members are 400 ``bad_request``; larger is 413 ``body_too_large``).
Refusals: 401 ``unauthorized`` / 403 ``forbidden`` (kms.auth), 404
``kwk_unknown``, 409 ``kwk_exists``, 410 ``kwk_destroyed``, 400
``bad_reference``, 503 ``unavailable`` / ``sealed`` / ``audit_unavailable``. Errors are
``{"error": code, "message": text}``; messages never carry a key, a
reference or a credential, and an unexpected failure is a fixed 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from audit.errors import AuditError
from kms.auth import Caller, require_role
from kms.root_service import MAX_RANDOM, RootService
from kms_client.aead import MAX_VERSION
from tee.wire import b64d, b64e
from tokengate.errors import GatewayError

log = logging.getLogger(__name__)

MAX_BODY: Final = 4096
ROLE: Final = "gateway"

type Authenticate = Callable[[web.Request], Awaitable[Caller]]
type _Body = Mapping[str, object]
type _Action = Callable[[Caller, _Body], Awaitable[dict[str, str]]]


class _BadRequest(Exception):
    """A body the routes cannot take: ``status`` 400 or 413 and a fixed message."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def add_root_routes(app: web.Application, service: RootService, authenticate: Authenticate) -> None:
    """Add the four root routes to ``app``; callers authenticate with ``authenticate``."""

    async def create(caller: Caller, body: _Body) -> dict[str, str]:
        key, reference = await service.create_kwk(caller.id, _version(body))
        return {"key": b64e(key), "reference": b64e(reference)}

    async def open_kwk(caller: Caller, body: _Body) -> dict[str, str]:
        key = await service.open_kwk(caller.id, _version(body), _reference(body))
        return {"key": b64e(key)}

    async def destroy(caller: Caller, body: _Body) -> dict[str, str]:
        await service.destroy_kwk(caller.id, _version(body), _reference(body))
        return {}

    async def random(caller: Caller, body: _Body) -> dict[str, str]:
        return {"bytes": b64e(await service.random(_int(body, "n", 1, MAX_RANDOM)))}

    routes = (
        ("/v1/root/kwks", {"version"}, create),
        ("/v1/root/kwks/open", {"version", "reference"}, open_kwk),
        ("/v1/root/kwks/destroy", {"version", "reference"}, destroy),
        ("/v1/root/random", {"n"}, random),
    )
    for path, members, action in routes:
        app.router.add_post(path, _handler(path, frozenset(members), action, authenticate))


def _handler(
    path: str, members: frozenset[str], action: _Action, authenticate: Authenticate
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        caller = await authenticate(request)  # raises its own 401 JSON answer
        require_role(caller, ROLE)  # raises its own 403 JSON answer
        try:
            body = await _read_body(request, members)
            return web.json_response(await action(caller, body))
        except _BadRequest as e:
            return _error(e.status, e.code, str(e))
        except (GatewayError, AuditError) as e:  # AuditError: audit's own, duck-typed alike
            log.info("kms: %s refused for client '%s': %s", path, caller.id, e.code)
            message = str(e) if e.public else "kms: the request failed"
            return _error(e.status, e.code, message)
        except Exception:
            log.exception("kms: %s failed for client '%s'", path, caller.id)
            return _error(500, "internal_error", "kms: internal error")

    return handle


async def _read_body(request: web.Request, members: frozenset[str]) -> _Body:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _too_large()
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise _too_large()
    try:
        doc = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise _BadRequest("kms: the body is not one JSON object") from e
    if not isinstance(doc, dict):
        raise _BadRequest("kms: the body is not one JSON object")
    if set(doc) != members:
        raise _BadRequest(f"kms: the body must have exactly: {', '.join(sorted(members))}")
    return doc


def _version(body: _Body) -> int:
    return _int(body, "version", 1, MAX_VERSION)


def _int(body: _Body, name: str, low: int, high: int) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _BadRequest(f"kms: '{name}' must be an integer from {low} to {high}")
    return value


def _reference(body: _Body) -> bytes:
    try:
        return b64d(body["reference"])
    except ValueError as e:
        raise _BadRequest("kms: 'reference' must be base64url without padding") from e


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate member")
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _too_large() -> _BadRequest:
    return _BadRequest(
        f"kms: the body is larger than {MAX_BODY} bytes", status=413, code="body_too_large"
    )


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)
