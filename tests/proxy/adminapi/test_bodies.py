"""Request bodies and path parameters: JSON objects only, bounded, strictly shaped; clear 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from yarl import URL

from proxy.adminapi.bodies import MAX_BODY
from tests.proxy.adminapi.conftest import Api, events, new_session
from tests.proxy.adminapi.test_app import V1, assert_json_error

JSON = {"Content-Type": "application/json"}


async def _post(
    api: Api, data: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, object], bool]:
    """POST users/alice/revoke with ``data``; (status, body, alice's session still live)."""
    sid = await new_session(api.store, "alice", now=api.clock.t - 10)
    resp = await api.client.post(
        f"{V1}/users/alice/revoke", data=data, headers={**api.auth("operator"), **headers}
    )
    body = await resp.json()
    alive = await api.store.get(sid, now=api.clock.t + 1) is not None
    return resp.status, body, alive


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (None, {}),
        (b"", JSON),
        (b"{}", JSON),
        (b'{"reason": "left the company"}', JSON),
        (b'{"reason": null}', {"Content-Type": "application/json; charset=utf-8"}),
    ],
)
async def test_accepted_bodies(api: Api, data: bytes | None, headers: dict[str, str]) -> None:
    status, body, alive = await _post(api, data, headers)
    assert status == 200
    assert body["revoked"] == 1
    assert not alive


@pytest.mark.parametrize(
    ("data", "headers", "status", "code", "message"),
    [
        (b'{"reason": "x"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type", "JSON"),
        (b'{"reason": "x"}', {"Content-Type": "application/x-www-form-urlencoded"}, 415,
         "unsupported_media_type", "JSON"),
        (b"{", JSON, 400, "bad_request", "not valid UTF-8 JSON"),
        (b'{"reason": "\xff"}', JSON, 400, "bad_request", "not valid UTF-8 JSON"),
        (b"[" * 5000, JSON, 400, "bad_request", "not valid UTF-8 JSON"),
        (b"[]", JSON, 400, "bad_request", "must be a JSON object"),
        (b'"revoke"', JSON, 400, "bad_request", "must be a JSON object"),
        (b'{"reason": "a", "reason": "b"}', JSON, 400, "bad_request", "duplicate key"),
        (b'{"secret_field_name": 1}', JSON, 400, "bad_request", "unknown field"),
        (b'{"reason": 5}', JSON, 400, "bad_request", "'reason' is invalid"),
        (b'{"reason": "line\\nbreak"}', JSON, 400, "bad_request", "'reason' is invalid"),
        (b'{"reason": "trailing\\n"}', JSON, 400, "bad_request", "'reason' is invalid"),
        (b'{"reason": "' + b"x" * 257 + b'"}', JSON, 400, "bad_request", "'reason' is invalid"),
        (b'{"reason": "' + b"x" * MAX_BODY + b'"}', JSON, 413, "payload_too_large", "exceeds"),
    ],
)  # fmt: skip
async def test_refused_bodies(
    api: Api, data: bytes, headers: dict[str, str], status: int, code: str, message: str
) -> None:
    sid = await new_session(api.store, "alice", now=api.clock.t - 10)
    resp = await api.client.post(
        f"{V1}/users/alice/revoke", data=data, headers={**api.auth("operator"), **headers}
    )
    body = await assert_json_error(resp, status, code)
    assert message in str(body["message"])
    assert "secret_field_name" not in str(body["message"])
    assert await api.store.get(sid, now=api.clock.t + 1) is not None
    assert events(api.data_dir) == []


async def test_chunked_body_over_the_limit_is_413(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"reason": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    resp = await api.client.post(
        f"{V1}/users/alice/revoke", data=chunks(), headers={**api.auth("operator"), **JSON}
    )
    assert "Content-Length" not in resp.request_info.headers
    await assert_json_error(resp, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"{V1}/sessions/short/revoke", "sid is not a session id"),
        (f"{V1}/sessions/{'A' * 42}%0A/revoke", "sid is not a session id"),
        (f"{V1}/sessions/{'A' * 42}%21/revoke", "sid is not a session id"),
        (f"{V1}/users/alice/sessions/{'A' * 64}/revoke", "sid_hash must be 64 lowercase hex"),
        (f"{V1}/users/alice/sessions/{'a' * 63}/revoke", "sid_hash must be 64 lowercase hex"),
        (f"{V1}/users/al%00ice/revoke", "sub must be 1..1024"),
        (f"{V1}/users/{'x' * 1025}/revoke", "sub must be 1..1024"),
    ],
)
async def test_bad_path_parameters_are_400(api: Api, path: str, message: str) -> None:
    resp = await api.client.post(URL(path, encoded=True), headers=api.auth("operator"))
    body = await assert_json_error(resp, 400, "bad_request")
    assert message in str(body["message"])
    assert events(api.data_dir) == []


@pytest.mark.parametrize("sub", ["a/b", "é x", "x" * 1024, "a%2Fb", "https://idp.example/u/1?x"])
async def test_any_sub_travels_percent_encoded(api: Api, sub: str) -> None:
    await new_session(api.store, sub, now=api.clock.t - 10)
    path = f"{V1}/users/{quote(sub, safe='')}/revoke"
    resp = await api.client.post(URL(path, encoded=True), headers=api.auth("operator"))
    assert await resp.json() == {"sub": sub, "revoked": 1}
