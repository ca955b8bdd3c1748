"""The worker's aiohttp application: three routes, JSON errors, a bounded body.

Every error is ``{"error": code, "message": text}``; the message is a fixed,
public one (never ``str()`` of an unexpected exception, which could quote a
value). Bodies above ``max_body`` are 413 ``body_too_large``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from tee.worker.service import Worker
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.tee.worker")
WORKER = web.AppKey("worker", Worker)
DEFAULT_MAX_BODY = 4 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as a JSON error; log unexpected ones without their message."""
    try:
        return await handler(request)
    except GatewayError as e:
        message = str(e) if e.public else "the worker could not serve this request"
        return _error(e.status, e.code, message)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "body_too_large", "the body is larger than the worker accepts")
    except web.HTTPException as e:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status, "bad_request")
        return _error(e.status, code, e.reason)
    except Exception as e:  # unexpected: fail this request closed, keep serving
        log.error("tee worker: %s %s failed (%s)", request.method, request.path, type(e).__name__)
        return _error(500, "internal_error", "the worker failed")


async def _json_body(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(reason="the body is not JSON") from None


async def info(request: web.Request) -> web.Response:
    """``GET /v1/info``."""
    return web.json_response(request.app[WORKER].info())


async def attest(request: web.Request) -> web.Response:
    """``POST /v1/attest``."""
    return web.json_response(await request.app[WORKER].attest(await _json_body(request)))


async def run_job(request: web.Request) -> web.Response:
    """``POST /v1/jobs/{job}``."""
    job = request.match_info["job"]
    return web.json_response(await request.app[WORKER].run_job(job, await _json_body(request)))


def build_app(worker: Worker, *, max_body: int = DEFAULT_MAX_BODY) -> web.Application:
    """The worker's application (the caller owns ``worker`` and closes it)."""
    app = web.Application(client_max_size=max_body, middlewares=[json_errors])
    app[WORKER] = worker
    app.router.add_get("/v1/info", info)
    app.router.add_post("/v1/attest", attest)
    app.router.add_post("/v1/jobs/{job}", run_job)
    return app
