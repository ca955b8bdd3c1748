"""One JSON access-log line per request, written in small batches.

It records the request id, route, method, the path without its query (query
strings may carry sensitive values), status, duration, peer and bytes sent.
Never headers, cookies or bodies. The line has the same shape as every other
log line (:mod:`proxy.logs`) but skips the logging framework: at thousands of
requests per second a LogRecord per request costs more than the proxying.
Lines are buffered for at most a quarter second or 128 lines, and flushed at
shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import sys
import time
from typing import TextIO

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from proxy.state import REQUEST_ID, ROUTE_NAME, STARTED

log = logging.getLogger("tokengate.access")


class AccessLogWriter:
    """Batches access lines onto a stream (stderr by default)."""

    def __init__(
        self, stream: TextIO | None = None, *, max_lines: int = 128, delay: float = 0.25
    ) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._max = max_lines
        self._delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def write(self, line: str) -> None:
        """Queue one line; flushed soon, or at once when the batch is full."""
        self._lines.append(line)
        if len(self._lines) >= self._max:
            self.flush()
            return
        loop = asyncio.get_running_loop()
        if self._timer is None or self._timer_loop is not loop:
            self._timer = loop.call_later(self._delay, self.flush)
            self._timer_loop = loop

    def flush(self) -> None:
        """Write every queued line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            stream = self._stream or sys.stderr
            stream.write("".join(self._lines))
            stream.flush()
            self._lines.clear()


WRITER = AccessLogWriter()
_PID = os.getpid()
_second: tuple[int, str] = (-1, "")


def _timestamp(now: float) -> str:
    global _second  # noqa: PLW0603 - a one-entry cache of the formatted second
    whole = int(now)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


def _elapsed(request: BaseRequest, coarse: float) -> float:
    """Seconds since the gateway took the request; aiohttp's own figure is loop-time coarse."""
    started = request.get(STARTED)
    return time.perf_counter() - started if started is not None else coarse


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp access logger writing JSON lines through :data:`WRITER`."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Queue one line; called by aiohttp after each response."""
        WRITER.write(
            line(
                ts=_timestamp(_now()),
                request_id=request.get(REQUEST_ID, "-"),
                route=request.get(ROUTE_NAME, "-"),
                method=request.method,
                path=request.path,
                status=response.status,
                duration_ms=round(_elapsed(request, time) * 1000, 3),
                peer=request.remote,
                sent=response.body_length,
            )
        )

    @property
    def enabled(self) -> bool:
        """Skip the work entirely when access logging is off."""
        return log.isEnabledFor(logging.INFO)


def _now() -> float:
    return time.time()


# What json.dumps does to a str (ensure_ascii), to a number, and to None.
_quote = json.encoder.encode_basestring_ascii


def _value(value: object) -> str:
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else json.dumps(value)
    return _quote(str(value))  # json.dumps(default=str)


def line(
    *,
    ts: str,
    request_id: object,
    route: object,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    peer: str | None,
    sent: int,
) -> str:
    """One access line: the same text as ``json.dumps(fields, separators=(",", ":"),
    default=str)`` of the fields in this order, without building a dict and an
    encoder per request."""
    return (
        f'{{"ts":{_quote(ts)},"level":"info","logger":"tokengate.access","msg":"request",'
        f'"pid":{_PID},"request_id":{_value(request_id)},"route":{_value(route)},'
        f'"method":{_quote(method)},"path":{_quote(path)},"status":{_value(status)},'
        f'"duration_ms":{_value(duration_ms)},"peer":{_value(peer)},"bytes":{_value(sent)}}}\n'
    )
