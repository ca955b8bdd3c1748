"""GatewayRequestHandler.handle_error: answers and logs for requests no handler finished."""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy.protocol import GatewayServer


async def _ignored(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response()


def _handle(exc: BaseException, status: int = 500) -> web.StreamResponse:
    request = make_mocked_request("GET", "/")
    request.writer.output_size = 0  # nothing of an answer written yet
    return GatewayServer(_ignored)().handle_error(request, status, exc)


async def test_a_client_that_left_is_logged_at_info_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tokengate")
    _handle(ConnectionResetError("Cannot write to closing transport"))
    records = [r for r in caplog.records if r.name.startswith("tokengate")]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert "closed the connection" in records[0].getMessage()


async def test_an_unexpected_failure_is_an_error_with_its_traceback_and_a_bare_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tokengate")
    response = _handle(RuntimeError("secret detail"))
    assert isinstance(response, web.Response)
    assert response.body is not None
    assert response.status == 500
    body = json.loads(bytes(response.body))  # type: ignore[arg-type]
    assert body["error"] == "internal_error"
    assert "secret" not in json.dumps(body)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
