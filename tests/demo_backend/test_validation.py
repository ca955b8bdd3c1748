"""Request validation over a real socket: every refusal, and that none echoes a value."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from demo_backend.validation import MAX_BODY_BYTES

from tests.demo_backend.support import Client, login, record_body

# Sent in every refused request below: it must never come back or reach the logs.
SECRET = "987-65-4320-SECRET-MARKER"


@pytest.fixture
async def alice(client: Client) -> dict[str, str]:
    return await login(client, "alice")


async def _post_raw(
    client: Client,
    path: str,
    data: bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> tuple[int, dict[str, object], str]:
    resp = await client.post(path, data=data, headers={**headers, "Content-Type": content_type})
    text = await resp.text()
    return resp.status, json.loads(text), text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"name": "' + SECRET.encode(), "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"\xff\xfe" + SECRET.encode(), "body is not valid JSON"),
        (b"[" * 10_000 + b"]" * 10_000, "body is not valid JSON"),
        (json.dumps([SECRET]).encode(), "body must be a JSON object"),
        (json.dumps(SECRET).encode(), "body must be a JSON object"),
        (b'{"ssn": "1", "ssn": "' + SECRET.encode() + b'"}', "body repeats a key"),
    ],
)
@pytest.mark.parametrize("path", ["/api/users", "/login"])
async def test_malformed_json_is_400(
    client: Client, alice: dict[str, str], raw: bytes, message: str, path: str
) -> None:
    status, body, text = await _post_raw(client, path, raw, alice)
    assert status == 400
    assert body == {"error": "invalid_json", "message": message}
    assert SECRET not in text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
@pytest.mark.parametrize("path", ["/api/users", "/login"])
async def test_wrong_content_type_is_415(
    client: Client, alice: dict[str, str], content_type: str, path: str
) -> None:
    raw = json.dumps(record_body(ssn=SECRET)).encode()
    resp = await client.post(path, data=raw, headers={**alice, "Content-Type": content_type})
    text = await resp.text()
    assert resp.status == 415
    assert json.loads(text)["error"] == "unsupported_media_type"
    assert SECRET not in text


async def test_json_with_charset_is_accepted(client: Client, alice: dict[str, str]) -> None:
    raw = json.dumps(record_body()).encode()
    status, _, _ = await _post_raw(
        client, "/api/users", raw, alice, content_type="application/json; charset=utf-8"
    )
    assert status == 201


BAD_FIELDS: list[tuple[dict[str, object], str, str]] = [
    (record_body(ssn=None), "invalid_field", "field 'ssn' must be a string"),
    (record_body(ssn=987654320), "invalid_field", "field 'ssn' must be a string"),
    (
        record_body(card_number=[SECRET]),
        "invalid_field",
        "field 'card_number' must be a string",
    ),
    (record_body(name={"x": SECRET}), "invalid_field", "field 'name' must be a string"),
    (record_body(email=True), "invalid_field", "field 'email' must be a string"),
    (record_body(ssn=""), "invalid_field", "field 'ssn' must be 1 to 256 characters"),
    (
        record_body(ssn=SECRET * 20),
        "invalid_field",
        "field 'ssn' must be 1 to 256 characters",
    ),
    (
        record_body(name=SECRET + "\ud800"),
        "invalid_field",
        "field 'name' must be valid unicode (no lone surrogates)",
    ),
    (
        {k: v for k, v in record_body().items() if k != "ssn"},
        "invalid_field",
        "field 'ssn' is required",
    ),
    (record_body(password=SECRET), "unknown_field", "field 'password' is not allowed"),
    (record_body(owner="bob"), "unknown_field", "field 'owner' is not allowed"),
    (record_body(id=7), "unknown_field", "field 'id' is not allowed"),
    (
        record_body(**{SECRET + " <b>": "x"}),
        "unknown_field",
        "field with an unprintable name is not allowed",
    ),
]


@pytest.mark.parametrize("case", BAD_FIELDS)
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_bad_fields_are_400_naming_the_field(
    client: Client,
    alice: dict[str, str],
    case: tuple[dict[str, object], str, str],
    method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body, error, message = case
    caplog.set_level(logging.DEBUG)
    created = await (await client.post("/api/users", json=record_body(), headers=alice)).json()
    path = "/api/users" if method == "POST" else f"/api/users/{created['id']}"
    raw = json.dumps(body).encode()
    resp = await client.request(
        method, path, data=raw, headers={**alice, "Content-Type": "application/json"}
    )
    text = await resp.text()
    assert resp.status == 400
    assert json.loads(text) == {"error": error, "message": message}
    assert SECRET not in text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "alice"}, "field 'password' is required"),
        ({"username": "alice", "password": 1}, "field 'password' must be a string"),
        ({"username": "a" * 65, "password": "x"}, "field 'username' must be 1 to 64 characters"),
        ({"username": "alice", "password": "alice", "role": "support"}, None),
    ],
)
async def test_bad_login_body_is_400(
    client: Client, body: dict[str, object], message: str | None
) -> None:
    resp = await client.post("/login", json=body)
    assert resp.status == 400
    answer = await resp.json()
    if message is None:
        assert answer == {"error": "unknown_field", "message": "field 'role' is not allowed"}
    else:
        assert answer == {"error": "invalid_field", "message": message}


def _padded_record(size: int) -> bytes:
    raw = json.dumps(record_body()).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def test_body_at_the_limit_is_accepted(client: Client, alice: dict[str, str]) -> None:
    raw = _padded_record(MAX_BODY_BYTES)
    assert len(raw) == MAX_BODY_BYTES
    status, _, _ = await _post_raw(client, "/api/users", raw, alice)
    assert status == 201


async def test_body_over_the_limit_is_413(client: Client, alice: dict[str, str]) -> None:
    raw = _padded_record(MAX_BODY_BYTES + 1)
    status, body, _ = await _post_raw(client, "/api/users", raw, alice)
    assert status == 413
    assert body == {
        "error": "payload_too_large",
        "message": f"body must be at most {MAX_BODY_BYTES} bytes",
    }


async def test_chunked_body_over_the_limit_is_413(client: Client, alice: dict[str, str]) -> None:
    # No Content-Length: the limit must hold while reading, not only on the header.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b" " * 1024

    resp = await client.post(
        "/api/users", data=chunks(), headers={**alice, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["error"] == "payload_too_large"


async def test_chunked_body_under_the_limit_is_read(client: Client, alice: dict[str, str]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield json.dumps(record_body()).encode()

    resp = await client.post(
        "/api/users", data=chunks(), headers={**alice, "Content-Type": "application/json"}
    )
    assert resp.status == 201
