"""``tokengate demo`` end to end: the demo app through the gateway, state under the data dir."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.integration.process import TOKENGATE

pytestmark = pytest.mark.slow

SSN, CARD = "078-05-1120", "4242424242424242"


async def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(log.read_text())


async def test_demo_serves_the_app_through_the_gateway(tmp_path: Path) -> None:
    port, admin = free_port(), free_port()
    data = tmp_path / "demo"
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                TOKENGATE,
                "demo",
                "--port",
                str(port),
                "--admin-port",
                str(admin),
                "--data-dir",
                str(data),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait(f"http://127.0.0.1:{admin}/.tokengate/readyz", proc, log)
        base = f"http://127.0.0.1:{port}"
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=base)
        origin = {"Origin": base}
        async with aiohttp.ClientSession(cookie_jar=jar, headers=origin) as s:
            async with s.get(f"{base}/") as r:
                assert r.status == 200
                assert "text/html" in r.headers["Content-Type"]
            async with s.post(
                f"{base}/login", json={"username": "alice", "password": "alice"}
            ) as r:
                assert r.status == 200
            async with s.post(
                f"{base}/api/users",
                json={"name": "Ada", "email": "ada@example.com", "ssn": SSN, "card_number": CARD},
            ) as r:
                assert r.status == 201
                record = await r.json()
            async with s.get(f"{base}/api/users/{record['id']}") as r:
                assert (await r.json())["owner"] == "alice"
            async with s.get(f"{base}/api/users") as r:
                assert r.status == 200
            async with s.delete(f"{base}/api/users/{record['id']}") as r:
                assert r.status == 405  # the policy allows GET and PUT on items only
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()
    assert "http://127.0.0.1:" in log.read_text()
    # All state lives under the data dir.
    assert {p.name for p in data.iterdir()} >= {
        "app",
        "audit",
        "audit-checkpoints",
        "keys",
        "gateway.yaml",
    }
    # The gateway's logs and audit files never saw the sensitive values
    # (the app's own database still holds them until tokenization lands).
    texts = [log.read_text(errors="replace")]
    for sub in ("audit", "audit-checkpoints"):
        texts += [p.read_text(errors="replace") for p in (data / sub).rglob("*") if p.is_file()]
    for text in texts:
        assert SSN not in text
        assert CARD not in text
