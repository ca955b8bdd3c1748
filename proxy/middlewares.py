"""The gateway's middlewares, outermost first: request id + error mapping, metrics.

Each is one concern and holds no per-request state on itself.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from audit.errors import AuditError
from proxy import metrics
from proxy.errors import PUBLIC_ERRORS, ProxyError, error_response
from proxy.forward import ClientGone, StreamAborted
from proxy.headers import request_id
from proxy.state import FINISH, REQUEST_ID, ROUTE_NAME, STARTED
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.proxy")
_UPSTREAM_KINDS = {
    "upstream_unavailable": "unavailable",
    "upstream_timeout": "timeout",
    "bad_gateway": "bad_response",
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id; turn every failure into a fixed JSON error."""
    request[STARTED] = time.perf_counter()
    rid = request_id(request.headers.get("X-Request-ID"))
    request[REQUEST_ID] = rid
    try:
        resp = await handler(request)
    except ProxyError as e:
        route = request.get(ROUTE_NAME, metrics.UNMATCHED)
        if (kind := _UPSTREAM_KINDS.get(e.code)) is not None:
            metrics.UPSTREAM_ERRORS.labels(route, kind).inc()
        log.info("refused: %s", e, extra={"request_id": rid, "route": route, "status": e.status})
        resp = error_response(e.code, rid, headers=e.headers)
    except ClientGone:
        log.debug("client went away", extra={"request_id": rid})
        raise
    except StreamAborted:
        metrics.UPSTREAM_ERRORS.labels(request.get(ROUTE_NAME, metrics.UNMATCHED), "aborted").inc()
        raise
    except (GatewayError, AuditError) as e:
        # Another package failed closed (store, key service or audit sink down, ...).
        log.warning("failed closed: %s", e, extra={"request_id": rid, "status": e.status})
        code = _public_code(e.code, e.status)
        # Only errors that declare themselves public (a rule's name, never a value)
        # show their own message; everything else gets the fixed one.
        message = str(e) if isinstance(e, GatewayError) and e.public and code == e.code else None
        resp = error_response(code, rid, status=e.status, message=message)
    except web.HTTPException as e:
        resp = error_response(_http_code(e.status), rid, status=e.status)
    except Exception:
        log.exception("unexpected error", extra={"request_id": rid})
        resp = error_response("internal_error", rid)
    if (finish := request.get(FINISH)) is not None and not resp.prepared:
        finish(resp)
    return resp


def _public_code(code: str, status: int) -> str:
    """A package's error code when it is a public one, else the generic one for its status."""
    if code in PUBLIC_ERRORS:
        return code
    return "service_unavailable" if status == 503 else "internal_error"


def _http_code(status: int) -> str:
    return {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }.get(status, "internal_error")


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests, time them and track how many are in flight."""
    start = time.perf_counter()
    metrics.IN_FLIGHT.inc()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except ClientGone:
        status = 499  # nginx's code for "client closed request"
        raise
    finally:
        metrics.IN_FLIGHT.dec()
        route = request.get(ROUTE_NAME, metrics.UNMATCHED)
        method = metrics.method_label(request.method)
        metrics.observe(route, method, str(status), time.perf_counter() - start)
