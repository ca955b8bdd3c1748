"""tee.broker_client against the real KMS service (HTTP and HTTPS/mTLS), and its failure typing."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from tee.broker_client import BrokerClient, GrantedKey, Revoked, read_credential
from tee.errors import KeyBrokerRefused, KeyBrokerUnavailable
from tests.conftest import free_port
from tests.kms.service_support import MEASUREMENT, Kms, SimWorker, running_kms
from tokengate.errors import ConfigError


@pytest.fixture
async def kms(tmp_path: Path) -> AsyncIterator[Kms]:
    async with running_kms(tmp_path) as k:
        yield k


@dataclass(frozen=True)
class Endpoint:
    """A ``tee.kms`` section (duck-typed like proxy.teeconfig.TeeKms)."""

    url: str
    credential_env: str | None = None
    credential_file: Path | None = None
    ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout: float = 5.0


def entry_body(tee_id: str = "w1") -> dict[str, object]:
    return {
        "id": tee_id,
        "platform": "sim",
        "measurements": {"measurement": [MEASUREMENT]},
        "tenants": ["acme"],
    }


async def test_gateway_calls_against_the_real_kms(kms: Kms) -> None:
    admin = BrokerClient(kms.url, credential=kms.admin)
    gateway = BrokerClient(kms.url, credential=kms.gateway)
    try:
        registered = await admin.register(entry_body())
        assert registered.id == "w1"
        assert (await gateway.get_tee("w1")) == registered
        assert [e.id for e in await admin.list_tees()] == ["w1"]

        worker = SimWorker(kms)
        with pytest.raises(KeyBrokerRefused) as refused:
            await gateway.grant(
                tee_id="w1", worker_key=worker.public, job="luhn", tenant="acme", request_id="r1"
            )
        assert (refused.value.status, refused.value.code) == (403, "unattested")

        await worker.session()
        granted = await gateway.grant(
            tee_id="w1",
            worker_key=worker.public,
            job="luhn",
            tenant="acme",
            request_id="r1",
            ttl=20,
        )
        assert isinstance(granted, GrantedKey)
        assert len(granted.key) == 32
        assert granted.key.hex() not in repr(granted)
        assert granted.expires_at == int(kms.clock.now.timestamp()) + 20

        assert await gateway.revoke("w1", worker.public) == Revoked(sessions=1, grants=1)
        retired = await admin.retire("w1")
        assert retired.status == "retired"
        assert (await gateway.get_tee("w1")).status == "retired"
    finally:
        await admin.close()
        await gateway.close()


async def test_refusals_carry_the_kms_status_and_code(kms: Kms) -> None:
    gateway = BrokerClient(kms.url, credential=kms.gateway)
    nobody = BrokerClient(kms.url, credential="tgk_" + "a" * 52)
    try:
        with pytest.raises(KeyBrokerRefused) as unknown:
            await gateway.get_tee("ghost")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_tee")
        with pytest.raises(KeyBrokerRefused) as role:
            await gateway.register(entry_body())
        assert (role.value.status, role.value.code) == (403, "forbidden")
        with pytest.raises(KeyBrokerRefused) as auth:
            await nobody.list_tees()
        assert (auth.value.status, auth.value.code) == (401, "unauthorized")
        assert "tgk_" not in str(auth.value)
        with pytest.raises(KeyBrokerRefused):
            await gateway.get_tee("../v1/tees")
    finally:
        await gateway.close()
        await nobody.close()


async def test_unreachable_kms_is_unavailable() -> None:
    client = BrokerClient(f"http://127.0.0.1:{free_port()}", credential="tgk_x", timeout=2)
    try:
        with pytest.raises(KeyBrokerUnavailable) as info:
            await client.get_tee("w1")
        assert info.value.status == 503
    finally:
        await client.close()


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    """A server that answers outside the protocol: 500, HTML, a slow answer, a bad grant."""
    release = asyncio.Event()

    async def boom(_: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "internal_error"}, status=500)

    async def html(_: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>", status=200)

    async def slow(_: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({})

    async def bad_grant(_: web.Request) -> web.StreamResponse:
        return web.json_response({"grant_id": "g", "key": "AAAA", "expires_at": 1})

    app = web.Application()
    app.router.add_get("/v1/tees/boom", boom)
    app.router.add_get("/v1/tees/html", html)
    app.router.add_get("/v1/tees/slow", slow)
    app.router.add_post("/v1/broker/grants", bad_grant)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()


@pytest.mark.parametrize("path", ["boom", "html", "slow"])
async def test_answers_outside_the_protocol_are_unavailable(odd_server: str, path: str) -> None:
    client = BrokerClient(odd_server, credential="tgk_x", timeout=0.5)
    try:
        with pytest.raises(KeyBrokerUnavailable):
            await client.get_tee(path)
    finally:
        await client.close()


async def test_a_grant_without_a_32_byte_key_is_unavailable(odd_server: str) -> None:
    client = BrokerClient(odd_server, credential="tgk_x")
    try:
        with pytest.raises(KeyBrokerUnavailable):
            await client.grant(
                tee_id="w1", worker_key=bytes(32), job="j", tenant="t", request_id="r"
            )
    finally:
        await client.close()


async def test_https_with_ca_and_mtls_from_config(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("gateway.test")
    files = tmp_path / "pki"
    files.mkdir()
    server.cert_chain_pems[0].write_to_path(files / "server.pem")
    server.private_key_pem.write_to_path(files / "server.key")
    ca.cert_pem.write_to_path(files / "ca.pem")
    client_cert.cert_chain_pems[0].write_to_path(files / "client.pem")
    client_cert.private_key_pem.write_to_path(files / "client.key")
    tls = {
        "cert": str(files / "server.pem"),
        "key": str(files / "server.key"),
        "client_ca": str(files / "ca.pem"),
    }
    test_ssl = ssl.create_default_context()
    ca.configure_trust(test_ssl)
    client_cert.configure_cert(test_ssl)
    async with running_kms(tmp_path, listen={"tls": tls}, client_ssl=test_ssl) as kms:
        assert kms.url.startswith("https://")
        cred = tmp_path / "gateway.cred"
        cred.write_text(kms.gateway + "\n")
        cred.chmod(0o600)
        endpoint = Endpoint(
            kms.url,
            credential_file=Path("gateway.cred"),
            ca=files / "ca.pem",
            client_cert=files / "client.pem",
            client_key=files / "client.key",
        )
        client = BrokerClient.from_config(endpoint, base=tmp_path)
        try:
            with pytest.raises(KeyBrokerRefused) as info:
                await client.get_tee("w1")
            assert info.value.code == "unknown_tee"  # TLS and mTLS worked; the KMS answered
        finally:
            await client.close()
        # without the client certificate the handshake fails: unavailable, not refused
        no_mtls = BrokerClient.from_config(
            Endpoint(kms.url, credential_file=cred, ca=files / "ca.pem"), base=tmp_path
        )
        try:
            with pytest.raises(KeyBrokerUnavailable):
                await no_mtls.get_tee("w1")
        finally:
            await no_mtls.close()
        # a CA that did not sign the KMS's certificate: unavailable
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(other)
        wrong = BrokerClient.from_config(
            Endpoint(kms.url, credential_file=cred, ca=other), base=tmp_path
        )
        try:
            with pytest.raises(KeyBrokerUnavailable):
                await wrong.get_tee("w1")
        finally:
            await wrong.close()


def test_credentials_from_env_or_private_file(tmp_path: Path) -> None:
    assert read_credential(env_name="KMS_CRED", file=None, env={"KMS_CRED": " tgk_a \n"}) == "tgk_a"
    with pytest.raises(ConfigError):
        read_credential(env_name="KMS_CRED", file=None, env={})
    path = tmp_path / "cred"
    path.write_text("tgk_b\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError):
        read_credential(env_name=None, file=path, env={})
    path.chmod(0o600)
    assert read_credential(env_name=None, file=path, env={}) == "tgk_b"
    with pytest.raises(ConfigError):
        read_credential(env_name=None, file=tmp_path / "missing", env={})
    with pytest.raises(ConfigError):
        BrokerClient("ftp://kms", credential="x")
    assert os.environ.get("KMS_CRED") is None
