"""The admin listener and the TLS listener of a real gateway process."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme

from tests.conftest import free_port
from tests.integration.conftest import Launcher
from tests.integration.process import wait_ready
from tests.proxy.conftest import Backend

pytestmark = pytest.mark.slow


async def test_health_readiness_and_metrics(backend: Backend, launch: Launcher) -> None:
    gw = launch(backend.url)
    await wait_ready(gw)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.admin}/.tokengate/healthz") as r:
            assert r.status == 200
        async with s.get(f"{gw.admin}/.tokengate/readyz") as r:
            assert r.status == 200
            assert (await r.json())["checks"] == {
                "upstream:backend": "ok",
                "audit": "ok",
                "keyring": "ok",
                "vault": "ok",
            }
        for _ in range(3):
            async with s.get(f"{gw.url}/echo") as r:
                await r.read()
        async with s.get(f"{gw.url}/status/503") as r:
            await r.read()
        async with s.get(f"{gw.admin}/.tokengate/metrics") as r:
            text = await r.text()
        # Admin endpoints are not reachable through the public listener's routes.
        async with s.get(f"{gw.url}/.tokengate/metrics") as r:
            assert "tokengate_requests_total" not in await r.text()
    assert 'tokengate_requests_total{method="GET",route="everything",status="200"} 3.0' in text
    assert 'tokengate_requests_total{method="GET",route="everything",status="503"} 1.0' in text
    assert "tokengate_request_duration_seconds_bucket" in text
    assert "tokengate_in_flight_requests" in text


async def test_readiness_fails_when_upstream_is_down(launch: Launcher) -> None:
    gw = launch(f"http://127.0.0.1:{free_port()}")
    await wait_ready(gw)
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.admin}/.tokengate/readyz") as r:
            assert r.status == 503
            body = await r.json()
        async with s.get(f"{gw.url}/anything") as r:
            assert r.status == 502
            assert r.headers["Content-Type"].startswith("application/json")
            await r.read()
    assert body["checks"]["upstream:backend"] == "failed"
    assert "127.0.0.1" not in str(body)
    async with aiohttp.ClientSession() as s, s.get(f"{gw.admin}/.tokengate/metrics") as r:
        metrics = await r.text()
    assert 'tokengate_upstream_errors_total{kind="unavailable",route="everything"} 1.0' in metrics


async def test_tls_listener(backend: Backend, launch: Launcher, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    gw = launch(backend.url, tls=(cert_path, key_path))
    await wait_ready(gw)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/echo", ssl=client_ctx) as r:
        assert r.status == 200
        assert (await r.json())["headers"]["X-Forwarded-Proto"] == "https"
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await s.get(f"{gw.url}/echo")


async def test_token_admin_api_on_a_real_gateway(backend: Backend, launch: Launcher) -> None:
    """The worker serves the token admin API over its vault and the policies' classes."""
    from proxy.adminapi.keys import key_digest, new_api_key

    key = new_api_key()
    digest = key_digest(key)
    routes = (
        "classes:\n  ssn: {format: ssn, keep_last: 4}\n"
        "routes:\n  - name: everything\n    match: {prefix: /}\n    allow_unauthenticated: true\n"
    )
    api = f", api: {{keys: [{{name: ops, role: admin, sha256: {digest}}}]}}"
    gw = launch(backend.url, routes=routes, admin_extra=api)
    await wait_ready(gw)
    base = f"{gw.admin}/.tokengate/admin/v1/tokens"
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=auth) as s:
        async with s.post(
            f"{base}/tokenize", json={"class": "ssn", "values": ["123-45-6789"]}
        ) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["results"][0]["token"]
        assert token != "123-45-6789"
        async with s.post(f"{base}/detokenize", json={"class": "ssn", "tokens": [token]}) as r:
            assert r.status == 200, await r.text()
            assert "123-45-6789" in await r.text()
        async with s.post(f"{base}/tokenize", json={"class": "pan", "values": ["1"]}) as r:
            assert r.status == 404  # undeclared class
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/detokenize", json={"class": "ssn", "tokens": [token]}) as r:
            assert r.status == 401
