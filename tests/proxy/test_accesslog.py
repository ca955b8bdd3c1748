"""Access lines: exactly json.dumps of the fields, one per request, no query, no headers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy import accesslog
from proxy.state import REQUEST_ID, ROUTE_NAME

FIELDS = ("request_id", "route", "method", "path", "status", "duration_ms", "peer", "bytes")


def reference(**fields: object) -> str:
    """The line as the logging framework would have written it: json.dumps of the dict."""
    record = {
        "ts": fields["ts"],
        "level": "info",
        "logger": "tokengate.access",
        "msg": "request",
        "pid": accesslog._PID,
        **{k: fields["sent" if k == "bytes" else k] for k in FIELDS},
    }
    return json.dumps(record, separators=(",", ":"), default=str) + "\n"


@given(
    path=st.text(max_size=40),
    method=st.sampled_from(["GET", "POST", "WEIRD-\u00e9"]),
    route=st.one_of(st.just("-"), st.text(max_size=10)),
    status=st.integers(100, 599),
    duration=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    peer=st.one_of(st.none(), st.just("127.0.0.1"), st.just("::1")),
    sent=st.integers(0, 2**40),
)
def test_line_is_exactly_json_dumps_of_the_fields(
    path: str,
    method: str,
    route: str,
    status: int,
    duration: float,
    peer: str | None,
    sent: int,
) -> None:
    fields: dict[str, object] = {
        "ts": "2026-01-02T03:04:05.678Z",
        "request_id": "req-12345678",
        "route": route,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(duration, 3),
        "peer": peer,
        "sent": sent,
    }
    text = accesslog.line(**fields)  # type: ignore[arg-type]
    assert text == reference(**fields)
    assert json.loads(text)["path"] == path


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    saved = accesslog.WRITER._stream
    accesslog.WRITER._stream = stream
    try:
        yield stream
    finally:
        accesslog.WRITER.flush()
        accesslog.WRITER._stream = saved


async def test_logger_writes_one_line_without_query_or_headers(captured: io.StringIO) -> None:
    request = make_mocked_request(
        "GET",
        "/api/users?ssn=078-05-1120",
        headers=CIMultiDict(
            {"Cookie": "tg-at=secret-cookie", "Authorization": "Bearer zq-bearer-value"}
        ),
    )
    request[REQUEST_ID] = "req-12345678"
    request[ROUTE_NAME] = "users"
    logger = accesslog.JsonAccessLogger(logging.getLogger("tokengate.access"), "")
    logger.log(request, web.Response(status=201), 0.0125)
    accesslog.WRITER.flush()
    text = captured.getvalue()
    assert text.count("\n") == 1
    entry = json.loads(text)
    assert {k: entry[k] for k in ("request_id", "route", "method", "path", "status")} == {
        "request_id": "req-12345678",
        "route": "users",
        "method": "GET",
        "path": "/api/users",
        "status": 201,
    }
    assert entry["duration_ms"] == 12.5
    for secret in ("078-05-1120", "secret-cookie", "Bearer", "zq-bearer-value"):
        assert secret not in text
