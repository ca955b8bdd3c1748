"""One JSON access-log line per request.

It records the request id, route, method, the path without its query (query
strings may carry sensitive values), status, duration, peer and bytes sent.
Never headers, cookies or bodies.
"""

from __future__ import annotations

import logging
import time

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from proxy.state import REQUEST_ID, ROUTE_NAME, STARTED

log = logging.getLogger("tokengate.access")


def _elapsed(request: BaseRequest, coarse: float) -> float:
    """Seconds since the gateway took the request; aiohttp's own figure is loop-time coarse."""
    started = request.get(STARTED)
    return time.perf_counter() - started if started is not None else coarse


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp access logger writing structured records to ``tokengate.access``."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Emit one record; called by aiohttp after each response."""
        log.info(
            "request",
            extra={
                "request_id": request.get(REQUEST_ID, "-"),
                "route": request.get(ROUTE_NAME, "-"),
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(_elapsed(request, time) * 1000, 3),
                "peer": request.remote,
                "bytes": response.body_length,
            },
        )

    @property
    def enabled(self) -> bool:
        """Skip the work entirely when access logging is off."""
        return log.isEnabledFor(logging.INFO)
