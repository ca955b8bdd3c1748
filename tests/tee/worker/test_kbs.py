"""tee.worker.kbs: the KMS URL rule and answers outside the protocol (the happy path is in test_service)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tee.envelope import Binding
from tee.errors import KeyBrokerRefused, KeyBrokerUnavailable
from tee.wire import b64e
from tee.worker.attester import SimAttester
from tee.worker.kbs import KbsClient, check_kms_url
from tee.worker.keys import WorkerKey


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8443",
        "http://localhost:1",
        "http://[::1]:80/",
        "https://kms.example:8443",
        "https://10.0.0.5",
    ],
    ids=["v4-loopback", "localhost", "v6-loopback", "https-name", "https-ip"],
)
def test_accepted_kms_urls(url: str) -> None:
    check_kms_url(url)


@pytest.mark.parametrize(
    "url",
    ["http://kms.example:8443", "http://10.0.0.5", "ftp://127.0.0.1", "127.0.0.1:8443", "https://"],
    ids=["http-name", "http-private-ip", "ftp", "no-scheme", "no-host"],
)
def test_refused_kms_urls(url: str) -> None:
    with pytest.raises(ValueError, match="kms"):
        check_kms_url(url)


def answer(status: int, body: bytes) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    return app


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (200, b"not json", KeyBrokerUnavailable, "kms_unavailable"),
        (200, b"[]", KeyBrokerUnavailable, "kms_unavailable"),
        (200, b'{"nonce": "AA=="}', KeyBrokerUnavailable, "kms_unavailable"),
        (
            200,
            b'{"nonce": "' + b64e(b"x" * 16).encode() + b'"}',
            KeyBrokerUnavailable,
            "kms_unavailable",
        ),
        (502, b'{"error": "bad_gateway"}', KeyBrokerUnavailable, "kms_unavailable"),
        (403, b'{"error": "retired"}', KeyBrokerRefused, "retired"),
        (404, b'{"error": "no such thing!"}', KeyBrokerRefused, "unknown"),
    ],
    ids=["not-json", "list", "bad-nonce", "short-nonce", "5xx", "refused", "odd-code"],
)
async def test_answers_outside_the_protocol(
    status: int, body: bytes, error: type[Exception], code: str
) -> None:
    server = TestServer(answer(status, body), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            attester = SimAttester(Ed25519PrivateKey.generate(), b"\0" * 48)
            client = KbsClient(str(server.make_url("/")), tee_id="t", attester=attester, http=http)
            with pytest.raises(error) as e:
                await client.attest(WorkerKey.generate(1))
            assert getattr(e.value, "code", None) == code
    finally:
        await server.close()


async def test_an_unreachable_kms_is_unavailable(unused_port: int) -> None:
    async with aiohttp.ClientSession() as http:
        attester = SimAttester(Ed25519PrivateKey.generate(), b"\0" * 48)
        client = KbsClient(
            f"http://127.0.0.1:{unused_port}", tee_id="t", attester=attester, http=http, timeout=2
        )
        key = WorkerKey.generate(1)
        with pytest.raises(KeyBrokerUnavailable, match="unreachable"):
            await client.attest(key)
        binding = Binding("t", key.public, "j", "t", "r", "g", 1)
        with pytest.raises(KeyBrokerUnavailable):
            await client.release(binding, key)


async def test_a_kms_url_prefix_is_kept(tmp_path: Path) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"error": "x"}, status=404)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            attester = SimAttester(Ed25519PrivateKey.generate(), b"\0" * 48)
            client = KbsClient(
                str(server.make_url("/kms/")), tee_id="t", attester=attester, http=http
            )
            with pytest.raises(KeyBrokerRefused):
                await client.attest(WorkerKey.generate(1))
        assert seen == ["/kms/v1/broker/challenge"]
    finally:
        await server.close()
