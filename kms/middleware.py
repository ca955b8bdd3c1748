"""One JSON error shape for every answer of the KMS: ``{"error": code, "message": text}``.

Deliberate errors (``GatewayError`` and the audit package's duck-typed
errors) answer their status and code; their message only when ``public``,
else a fixed text. aiohttp's own HTTP errors (404 unknown route, 405, 413)
get a JSON body too; HTTP exceptions that already carry JSON pass through
unchanged (kms.auth's 401/403). Anything else is logged with its type and
answered 500 ``internal_error``: never ``str(exc)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from audit.errors import AuditError
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.kms.http")

_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str) -> web.Response:
    """The JSON error answer."""
    return web.json_response({"error": code, "message": message}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure of ``handler`` into the JSON error shape."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        code = _CODES.get(e.status, "error")
        return error_response(e.status, code, f"kms: {e.reason.lower()}")
    except (GatewayError, AuditError) as e:
        message = str(e) if e.public else "kms: the request failed"
        if e.status >= 500:
            log.warning(
                "kms: %s %s: %s (%s)", request.method, request.path, e.code, type(e).__name__
            )
        return error_response(e.status, e.code, message)
    except Exception:
        log.exception("kms: %s %s failed", request.method, request.path)
        return error_response(500, "internal_error", "kms: internal error")
