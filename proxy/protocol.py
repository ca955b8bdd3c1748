"""Answers for requests aiohttp's HTTP parser rejects before any handler runs.

aiohttp's default answer to a malformed or oversized request puts the parser's
message (with bytes of the request) in a text body and logs a traceback. Here
those become the same fixed JSON errors as everything else: 431 for headers
over the limit, 400 for any other malformed message, one log line with the
exception class only. What aiohttp does not let us change: the connection is
always closed after such an error, and a request line over the limit is
reported as a plain 400 (no 414).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from proxy.errors import error_body

log = logging.getLogger("tokengate.protocol")


def _code_for(status: int, exc: BaseException | None) -> tuple[int, str]:
    if isinstance(exc, LineTooLong):
        # aiohttp does not say which line was too long. Its C parser passes the
        # URL as a bytearray and a header value as bytes; the pure-Python parser
        # names the status/request line in text. A header value that itself
        # starts with "/" is reported as 400, the safe side.
        line = exc.args[0] if exc.args else b""
        is_request_line = isinstance(line, bytearray) or str(line).startswith(
            ("/", "Status line", "Request line", "b'/")
        )
        return (400, "bad_request") if is_request_line else (431, "headers_too_large")
    if isinstance(exc, HttpProcessingError) and "header" in type(exc).__name__.lower():
        return 400, "bad_request"
    if status == 500:
        return 500, "internal_error"
    return (status, "bad_request") if 400 <= status < 500 else (500, "internal_error")


class GatewayRequestHandler(RequestHandler):
    """aiohttp's protocol handler with leak-free error answers."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Build the error response for a request no handler could take."""
        status, code = _code_for(status, exc)
        rid = secrets.token_hex(16)
        if isinstance(exc, ConnectionResetError):  # the client left while we answered
            log.info(
                "client closed the connection before the answer was complete",
                extra={"request_id": rid, "error": type(exc).__name__},
            )
        elif status >= 500:
            log.error("request failed before routing", exc_info=exc, extra={"request_id": rid})
        else:
            log.info(
                "rejected malformed request",
                extra={
                    "request_id": rid,
                    "error": type(exc).__name__ if exc else "none",
                    "status": status,
                },
            )
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        resp = web.Response(
            status=status, body=error_body(code, rid), content_type="application/json"
        )
        resp.headers["X-Request-ID"] = rid
        resp.force_close()
        return resp


class GatewayServer(web.Server):
    """web.Server that builds :class:`GatewayRequestHandler` protocols."""

    def __call__(self) -> RequestHandler:
        return GatewayRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """AppRunner whose server uses :class:`GatewayServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        kwargs: dict[str, Any] = dict(server._kwargs)
        return GatewayServer(
            server.request_handler,
            request_factory=server.request_factory,
            loop=server._loop,
            **kwargs,
        )
