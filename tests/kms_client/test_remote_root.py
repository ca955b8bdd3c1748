"""RemoteRootKey against a real running KMS root API (kms.root_api on aiohttp, kms.auth, SQLite)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from kms.auth import new_credential
from kms_client import rng
from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from kms_client.remote_root import RemoteRootKey
from kms_client.remote_root_config import RemoteRootConfig
from tee.wire import b64e
from tests.conftest import free_port
from tests.kms.root_support import RootApi, running_root_api
from tests.kms_client.support import open_manager

ENV = "TG_TEST_KMS_CREDENTIAL"


def _uri(url: str, *extra: str) -> str:
    return ";".join((f"remote:{url}", f"credential-env={ENV}", *extra))


def _root(url: str, credential: str, *extra: str) -> RemoteRootKey:
    return RemoteRootKey(RemoteRootConfig.from_uri(_uri(url, *extra)), environ={ENV: credential})


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RootApi]:
    async with running_root_api(tmp_path) as running:
        yield running


async def test_a_gateway_keyring_unseals_through_the_kms(
    api: RootApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, api.gateway)
    gateway_dir = tmp_path / "gateway"
    first = await open_manager(gateway_dir, root=_uri(api.url))
    try:
        sealed = first.encrypt("tokenize", b"4111 1111 1111 1111", context=b"rec-1")
        assert rng.source_name() == "hkdf-drbg+remote"  # reseeded from the KMS's RNG
    finally:
        await first.close()
    second = await open_manager(gateway_dir, root=_uri(api.url))  # reopens KWK v1 at the KMS
    try:
        assert second.decrypt("tokenize", sealed, context=b"rec-1") == b"4111 1111 1111 1111"
        assert second.root_description == f"remote:{api.url}"
    finally:
        await second.close()
    assert api.auditor.find("kms.root_create", client="gw-1", version=1, result="ok")
    assert api.auditor.find("kms.root_open", client="gw-1", version=1, result="ok")


async def test_a_destroyed_kwk_makes_old_keyring_copies_useless(
    api: RootApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, api.gateway)
    gateway_dir = tmp_path / "gateway"
    manager = await open_manager(gateway_dir, root=_uri(api.url))
    keyring_file = gateway_dir / "kms" / "keyring.json"
    backup = keyring_file.read_bytes()
    try:
        await manager.rotate_kwk(actor="test")
        await manager.finish_retired_kwks()
    finally:
        await manager.close()
    assert api.auditor.find("kms.root_destroy", client="gw-1", version=1, result="ok")
    keyring_file.write_bytes(backup)  # an old copy: a backup, a restored snapshot
    with pytest.raises(WrongRoot, match="kwk v1 is destroyed"):
        await open_manager(gateway_dir, root=_uri(api.url))


async def test_create_open_destroy_random_directly(api: RootApi) -> None:
    root = _root(api.url, api.gateway)
    await root.open()
    try:
        kwk, ref = await root.create_kwk(5)
        assert len(kwk) == 32
        assert await root.open_kwk(5, ref) == kwk
        with pytest.raises(RootError, match="kwk v5 already exists"):
            await root.create_kwk(5)
        with pytest.raises(WrongRoot, match="kwk v4 is unknown"):
            await root.open_kwk(4, ref)
        await root.destroy_kwk(5, ref)
        await root.destroy_kwk(5, ref)  # idempotent
        with pytest.raises(WrongRoot, match="kwk v5 is destroyed"):
            await root.open_kwk(5, ref)
        assert len(await root.random(1024)) == 1024
        for n in (0, 1025):
            with pytest.raises(ValueError, match=r"1\.\.1024"):
                await root.random(n)
    finally:
        await root.close()
        await root.close()  # idempotent


async def test_another_gateways_reference_does_not_open(api: RootApi) -> None:
    mine, theirs = _root(api.url, api.gateway), _root(api.url, api.other_gateway)
    await mine.open()
    await theirs.open()
    try:
        _, ref = await mine.create_kwk(1)
        with pytest.raises(WrongRoot, match="unknown there"):
            await theirs.open_kwk(1, ref)
    finally:
        await mine.close()
        await theirs.close()


async def test_an_unreachable_kms_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, new_credential())
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RootUnavailable, match=f"remote root remote:{url} is unreachable"):
        await open_manager(tmp_path, root=_uri(url))


async def test_a_kms_that_went_down_fails_closed(tmp_path: Path) -> None:
    async with running_root_api(tmp_path) as api:
        root = _root(api.url, api.gateway)
        await root.open()
        _, ref = await root.create_kwk(1)
    try:
        with pytest.raises(RootUnavailable, match="unreachable"):
            await root.open_kwk(1, ref)
        with pytest.raises(RootUnavailable):
            await root.random(48)
    finally:
        await root.close()


@pytest.mark.parametrize("who", ["unknown", "admin"])
async def test_a_credential_the_kms_refuses_is_a_root_auth_error(
    api: RootApi, who: str, caplog: pytest.LogCaptureFixture
) -> None:
    credential = new_credential() if who == "unknown" else api.admin
    root = _root(api.url, credential)
    expected = "401 unauthorized" if who == "unknown" else "403 forbidden"
    with caplog.at_level(logging.DEBUG), pytest.raises(RootAuthError, match=expected) as info:
        await root.open()
    assert credential not in str(info.value)
    assert credential not in caplog.text
    assert credential not in repr(root)
    assert credential not in root.description


async def test_a_missing_credential_is_named(api: RootApi) -> None:
    root = RemoteRootKey(RemoteRootConfig.from_uri(_uri(api.url)), environ={})
    with pytest.raises(RootUnavailable, match=f"{ENV} is not set"):
        await root.open()


@dataclass(frozen=True)
class Tls:
    ca: Path
    server: ssl.SSLContext
    mtls_server: ssl.SSLContext
    client_cert: Path
    client_key: Path


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_cert = ca.issue_cert("127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server)
    mtls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(mtls)
    mtls.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(mtls)
    client = ca.issue_cert("gateway-1.tokengate.test")
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(key_file))
    return Tls(ca_file, server, mtls, cert_file, key_file)


async def test_tls_with_a_private_ca(tmp_path: Path, tls: Tls) -> None:
    async with running_root_api(tmp_path, ssl_context=tls.server) as api:
        assert api.url.startswith("https://")
        trusted = _root(api.url, api.gateway, f"ca={tls.ca}")
        await trusted.open()
        try:
            kwk, ref = await trusted.create_kwk(1)
            assert await trusted.open_kwk(1, ref) == kwk
        finally:
            await trusted.close()
        untrusted = _root(api.url, api.gateway)  # system trust store: the test CA is not in it
        with pytest.raises(RootUnavailable, match="TLS certificate is not trusted"):
            await untrusted.open()


async def test_mtls_needs_the_client_certificate(tmp_path: Path, tls: Tls) -> None:
    async with running_root_api(tmp_path, ssl_context=tls.mtls_server) as api:
        with_cert = _root(
            api.url, api.gateway, f"ca={tls.ca}", f"cert={tls.client_cert}", f"key={tls.client_key}"
        )
        await with_cert.open()
        try:
            assert len(await with_cert.random(32)) == 32
        finally:
            await with_cert.close()
        without = _root(api.url, api.gateway, f"ca={tls.ca}")
        with pytest.raises(RootUnavailable):
            await without.open()


async def test_unreadable_tls_files_are_named(api: RootApi, tmp_path: Path) -> None:
    root = _root(api.url.replace("http:", "https:"), api.gateway, f"ca={tmp_path / 'nope.pem'}")
    with pytest.raises(RootUnavailable, match="cannot load its TLS files"):
        await root.open()


def _fake_kms(answer: web.Response) -> web.Application:
    """A KMS whose random call works (so open succeeds) and whose create answers ``answer``."""

    async def random(request: web.Request) -> web.Response:
        n = (await request.json())["n"]
        return web.json_response({"bytes": b64e(bytes(n))})

    async def create(request: web.Request) -> web.Response:
        return answer

    app = web.Application()
    app.router.add_post("/v1/root/random", random)
    app.router.add_post("/v1/root/kwks", create)
    return app


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("not-json", RootError, "bad answer \\(not JSON\\)"),
        ("array", RootError, "bad answer \\(not an object\\)"),
        ("short-key", RootError, "bad answer \\(kwk shape\\)"),
        ("padded", RootError, "bad answer \\('key'\\)"),
        ("no-reference", RootError, "bad answer \\('reference'\\)"),
        ("too-large", RootError, "bad answer \\(too large\\)"),
        ("redirect", RootError, "refused kwk v1 \\(302"),
        ("teapot", RootError, "refused kwk v1 \\(418 \\(no error code\\)\\)"),
        ("server-error", RootUnavailable, "answered 503 unavailable"),
    ],
)
async def test_bad_answers_are_root_errors(case: str, error: type[RootError], message: str) -> None:
    key = b64e(bytes(32))
    answer = {
        "not-json": web.Response(text="<html>"),
        "array": web.json_response([1]),
        "short-key": web.json_response({"key": b64e(bytes(16)), "reference": "AQ"}),
        "padded": web.json_response({"key": key + "=", "reference": "AQ"}),
        "no-reference": web.json_response({"key": key}),
        "too-large": web.json_response({"key": key, "reference": "A" * 70_000}),
        "redirect": web.Response(status=302, headers={"Location": "http://elsewhere/"}),
        "teapot": web.Response(status=418, text="I'm a teapot: tgk_leak"),
        "server-error": web.json_response({"error": "unavailable", "message": "x"}, status=503),
    }[case]
    runner = web.AppRunner(_fake_kms(answer))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    root = _root(f"http://127.0.0.1:{port}", new_credential())
    try:
        await root.open()
        with pytest.raises(error, match=message) as info:
            await root.create_kwk(1)
        assert "leak" not in str(info.value)
    finally:
        await root.close()
        await runner.cleanup()


async def test_calls_before_open_are_refused() -> None:
    root = _root("https://kms.invalid", new_credential())
    with pytest.raises(RootError, match="is not open"):
        await root.open_kwk(1, b"\x01")
