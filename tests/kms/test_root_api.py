"""The root routes on a real aiohttp server with kms.auth credentials and a real RootService."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kms.root_api import MAX_BODY
from tee.wire import b64d, b64e
from tests.kms.root_support import RootApi, running_root_api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RootApi]:
    async with running_root_api(tmp_path) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _post(
    http: aiohttp.ClientSession,
    api: RootApi,
    path: str,
    body: object,
    *,
    credential: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, object]]:
    token = api.gateway if credential is None else credential
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(body).encode()
    async with http.post(api.url + path, data=data, headers=headers) as resp:
        assert resp.content_type == "application/json"
        doc = await resp.json()
        assert isinstance(doc, dict)
        return resp.status, doc


async def test_create_open_destroy_over_http(http: aiohttp.ClientSession, api: RootApi) -> None:
    status, made = await _post(http, api, "/v1/root/kwks", {"version": 1})
    assert status == 200
    key = b64d(made["key"])
    assert len(key) == 32
    ref = made["reference"]
    status, opened = await _post(http, api, "/v1/root/kwks/open", {"version": 1, "reference": ref})
    assert (status, b64d(opened["key"])) == (200, key)
    body = {"version": 1, "reference": ref}
    assert await _post(http, api, "/v1/root/kwks/destroy", body) == (200, {})
    assert await _post(http, api, "/v1/root/kwks/destroy", body) == (200, {})
    status, err = await _post(http, api, "/v1/root/kwks/open", body)
    assert (status, err["error"]) == (410, "kwk_destroyed")
    assert api.auditor.find("kms.root_create", client="gw-1", version=1, result="ok")


async def test_create_of_a_live_version_is_409(http: aiohttp.ClientSession, api: RootApi) -> None:
    assert (await _post(http, api, "/v1/root/kwks", {"version": 7}))[0] == 200
    status, err = await _post(http, api, "/v1/root/kwks", {"version": 7})
    assert (status, err["error"]) == (409, "kwk_exists")
    assert "kwk v7" in str(err["message"])


async def test_a_gateway_cannot_open_another_gateways_kwk(
    http: aiohttp.ClientSession, api: RootApi
) -> None:
    _, made = await _post(http, api, "/v1/root/kwks", {"version": 1})
    body = {"version": 1, "reference": made["reference"]}
    status, err = await _post(http, api, "/v1/root/kwks/open", body, credential=api.other_gateway)
    assert (status, err["error"]) == (404, "kwk_unknown")
    assert await _post(http, api, "/v1/root/kwks/destroy", body, credential=api.other_gateway) == (
        200,
        {},
    )
    assert (await _post(http, api, "/v1/root/kwks/open", body))[0] == 200  # still live for gw-1


@pytest.mark.parametrize(
    "path",
    ["/v1/root/kwks", "/v1/root/kwks/open", "/v1/root/kwks/destroy", "/v1/root/random"],
)
@pytest.mark.parametrize("who", ["none", "unknown", "admin"])
async def test_every_route_needs_a_gateway_credential(
    http: aiohttp.ClientSession, api: RootApi, path: str, who: str
) -> None:
    credential = {"none": "", "unknown": "tgk_" + "a" * 52, "admin": api.admin}[who]
    status, err = await _post(http, api, path, {"version": 1}, credential=credential)
    expected = (403, "forbidden") if who == "admin" else (401, "unauthorized")
    assert (status, err["error"]) == expected
    assert not [e for e in api.auditor.names() if e.startswith("kms.root_")]


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/root/kwks", b"not json"),
        ("/v1/root/kwks", b"[1]"),
        ("/v1/root/kwks", b"{}"),
        ("/v1/root/kwks", b'{"version": 1, "extra": 2}'),
        ("/v1/root/kwks", b'{"version": 1, "version": 2}'),
        ("/v1/root/kwks", b'{"version": "1"}'),
        ("/v1/root/kwks", b'{"version": true}'),
        ("/v1/root/kwks", b'{"version": 0}'),
        ("/v1/root/kwks", b'{"version": 4294967296}'),
        ("/v1/root/kwks", b'{"version": NaN}'),
        ("/v1/root/kwks", b'{"version": 1.0}'),
        ("/v1/root/kwks/open", b'{"version": 1}'),
        ("/v1/root/kwks/open", b'{"version": 1, "reference": "AA=="}'),
        ("/v1/root/kwks/open", b'{"version": 1, "reference": "a+b/"}'),
        ("/v1/root/kwks/open", b'{"version": 1, "reference": 5}'),
        ("/v1/root/random", b'{"n": 0}'),
        ("/v1/root/random", b'{"n": 1025}'),
        ("/v1/root/random", b'{"n": -1}'),
    ],
)
async def test_malformed_bodies_are_400(
    http: aiohttp.ClientSession, api: RootApi, path: str, raw: bytes
) -> None:
    status, err = await _post(http, api, path, None, raw=raw)
    assert (status, err["error"]) == (400, "bad_request")


async def test_a_reference_of_the_wrong_shape_is_400_bad_reference(
    http: aiohttp.ClientSession, api: RootApi
) -> None:
    body = {"version": 1, "reference": b64e(b"\x01" + bytes(20))}
    status, err = await _post(http, api, "/v1/root/kwks/open", body)
    assert (status, err["error"]) == (400, "bad_reference")


async def test_bodies_above_the_limit_are_413(http: aiohttp.ClientSession, api: RootApi) -> None:
    big = json.dumps({"version": 1, "pad": "x" * MAX_BODY}).encode()
    status, err = await _post(http, api, "/v1/root/kwks", None, raw=big)
    assert (status, err["error"]) == (413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the read itself is capped
        for _ in range(8):
            yield b" " * 1024

    headers = {"Authorization": f"Bearer {api.gateway}"}
    async with http.post(api.url + "/v1/root/kwks", data=chunks(), headers=headers) as resp:
        assert resp.status == 413


async def test_random_answers_n_bytes(http: aiohttp.ClientSession, api: RootApi) -> None:
    status, doc = await _post(http, api, "/v1/root/random", {"n": 48})
    assert status == 200
    assert len(b64d(doc["bytes"])) == 48


async def test_a_sealed_kms_answers_503_and_makes_nothing(
    http: aiohttp.ClientSession, api: RootApi
) -> None:
    await api.keys.seal(actor="test")
    status, err = await _post(http, api, "/v1/root/kwks", {"version": 1})
    assert (status, err["error"]) == (503, "sealed")
    await api.keys.unseal(actor="test")
    assert (await _post(http, api, "/v1/root/kwks", {"version": 1}))[0] == 200


async def test_answers_never_echo_references_or_credentials(
    http: aiohttp.ClientSession, api: RootApi
) -> None:
    _, made = await _post(http, api, "/v1/root/kwks", {"version": 1})
    ref = str(made["reference"])
    tampered = ref[:-2] + ("AA" if not ref.endswith("AA") else "BA")
    answers = [
        await _post(http, api, "/v1/root/kwks/open", {"version": 1, "reference": tampered}),
        await _post(http, api, "/v1/root/kwks/open", {"version": 2, "reference": ref}),
        await _post(http, api, "/v1/root/kwks", {"version": 1}),
    ]
    assert [s for s, _ in answers] == [404, 404, 409]
    text = json.dumps([a for _, a in answers])
    for secret in (ref, tampered, api.gateway, made["key"]):
        assert str(secret) not in text
