"""The demo app's two middlewares: JSON errors and browser security headers.

Every failure, including aiohttp's own 404/405/413, leaves as the JSON error
shape of :mod:`demo_backend.errors`. An unexpected exception is logged by type
only (its message could carry a submitted value) and answered with a fixed 500.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from demo_backend.errors import ApiError, error_response

logger = logging.getLogger("demo_backend")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every refusal into ``{"error", "message"}`` JSON."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _HTTP_CODES.get(e.status, "http_error")
        return error_response(e.status, code, e.reason.lower())
    except Exception as e:
        # Type only, no traceback: exception text could carry a submitted value.
        logger.error(
            "demo_backend: unhandled %s on %s %s", type(e).__name__, request.method, request.path
        )
        return error_response(500, "internal_error", "internal error")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Lock the page down: same-origin scripts only, no framing, no sniffing."""
    response = await handler(request)
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/") or request.path in ("/login", "/logout"):
        response.headers["Cache-Control"] = "no-store"
    return response
