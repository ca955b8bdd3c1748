"""tee.worker.kbs: the KMS URL rule and answers outside the protocol (the happy path is in test_service)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tee import sim
from tee.envelope import Binding
from tee.errors import KeyBrokerRefused, KeyBrokerUnavailable
from tee.wire import b64e
from tee.worker.attester import SimAttester
from tee.worker.kbs import KbsClient, check_kms_url, worker_tls
from tee.worker.keys import WorkerKey
from tests.kms.service_support import MEASUREMENT, running_kms
from tokengate.errors import ConfigError


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


# ---- TLS and mTLS toward the real KMS ----


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    assert worker_tls() is None
    with pytest.raises(ValueError, match="--kms-key"):
        worker_tls(cert=tmp_path / "c.pem")
    with pytest.raises(ValueError, match="--kms-key"):
        worker_tls(ca=tmp_path / "ca.pem", key=tmp_path / "c.key")


def test_unreadable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kms"):
        worker_tls(ca=tmp_path / "missing.pem")


async def test_mtls_to_a_kms_that_requires_client_certificates(tmp_path: Path) -> None:
    ca = trustme.CA()
    files = tmp_path / "pki"
    files.mkdir()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(files / "server.pem")
    server.private_key_pem.write_to_path(files / "server.key")
    ca.cert_pem.write_to_path(files / "ca.pem")
    worker_cert = ca.issue_cert("worker.test")
    worker_cert.cert_chain_pems[0].write_to_path(files / "worker.pem")
    worker_cert.private_key_pem.write_to_path(files / "worker.key")
    tls = {
        "cert": str(files / "server.pem"),
        "key": str(files / "server.key"),
        "client_ca": str(files / "ca.pem"),
    }
    admin_ssl = ssl.create_default_context()
    ca.configure_trust(admin_ssl)
    worker_cert.configure_cert(admin_ssl)
    async with running_kms(tmp_path, listen={"tls": tls}, client_ssl=admin_ssl) as kms:
        assert (await kms.register()).status == 201
        kms.clock.now = datetime.now(UTC)  # the attester dates its evidence with the real clock
        attester = SimAttester(sim.load_or_create_key(kms.data_dir), bytes.fromhex(MEASUREMENT))
        mtls = worker_tls(ca=files / "ca.pem", cert=files / "worker.pem", key=files / "worker.key")
        async with aiohttp.ClientSession() as http:
            client = KbsClient(kms.url, tee_id="w1", attester=attester, http=http, ssl_context=mtls)
            await client.attest(WorkerKey.generate(1))  # the KMS answered with a session
            attested = kms.audit_events("kms.attest")
            assert [e["fields"]["outcome"] for e in attested] == ["ok"]

            no_cert = worker_tls(ca=files / "ca.pem")
            client = KbsClient(
                kms.url, tee_id="w1", attester=attester, http=http, ssl_context=no_cert
            )
            with pytest.raises(KeyBrokerUnavailable, match="unreachable"):
                await client.attest(WorkerKey.generate(2))  # the handshake fails
        assert len(kms.audit_events("kms.attest")) == 1
