"""JSON log lines on stderr with a fixed set of structured fields.

Only fields in :data:`ALLOWED_EXTRA` are copied from a record's ``extra``: a
body, a cookie or a header value cannot reach the log by accident through an
``extra=`` argument. Messages themselves are written by our code and never
format request data other than ids, routes, methods and paths.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

ALLOWED_EXTRA = (
    "request_id",
    "route",
    "method",
    "path",
    "status",
    "duration_ms",
    "peer",
    "bytes",
    "error",
    "upstream",
    "worker",
    "problems",
    "digest",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, pid and allowed extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": os.getpid(),
        }
        for key in ALLOWED_EXTRA:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup_logging(level: str = "info") -> None:
    """Route every logger to JSON lines on stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access logger is replaced by ours; its server logger would
    # print parser internals and tracebacks for client garbage.
    logging.getLogger("aiohttp.access").disabled = True
