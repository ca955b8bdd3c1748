"""``tokengate serve`` as a real process: workers, drain, reload, limits, logs."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import Launcher
from tests.integration.process import peak_rss_kib, rss_kib, start_gateway, wait_ready
from tests.proxy.conftest import Backend

pytestmark = pytest.mark.slow


async def test_two_workers_share_the_port(backend: Backend, launch: Launcher) -> None:
    gw = launch(backend.url, workers=2)
    await wait_ready(gw, workers=2)
    for _ in range(60):
        # A new connection per request lets the kernel pick either worker.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            async with s.get(f"{gw.url}/echo") as r:
                assert r.status == 200
    pids: set[int] = set()
    for _ in range(50):  # access lines are flushed in batches (at most 0.25 s late)
        pids = {
            json.loads(line)["pid"]
            for line in gw.log().splitlines()
            if '"msg":"request"' in line and '"/echo"' in line
        }
        if len(pids) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(pids) == 2, gw.log()
    assert gw.stop() == 0


async def test_sigterm_drains_in_flight_requests(backend: Backend, launch: Launcher) -> None:
    gw = launch(backend.url, extra="drain_timeout: 10s\n")
    await wait_ready(gw)
    async with aiohttp.ClientSession() as s:
        slow = asyncio.create_task(s.get(f"{gw.url}/slow?s=1.5"))
        await asyncio.sleep(0.4)
        gw.signal(signal.SIGTERM)
        resp = await slow
        assert resp.status == 200
        assert await resp.text() == "late"
        resp.release()
    assert await asyncio.to_thread(gw.proc.wait, 20) == 0
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/echo"):
            pass


async def test_drain_deadline_cuts_long_requests(backend: Backend, launch: Launcher) -> None:
    gw = launch(backend.url, extra="drain_timeout: 300ms\n")
    await wait_ready(gw)
    async with aiohttp.ClientSession() as s:
        slow = asyncio.create_task(s.get(f"{gw.url}/slow?s=20"))
        await asyncio.sleep(0.4)
        started = time.monotonic()
        gw.signal(signal.SIGTERM)
        with pytest.raises(aiohttp.ClientError):
            await (await slow).read()
    await asyncio.to_thread(gw.proc.wait, 20)
    assert time.monotonic() - started < 15


RELOAD_ROUTES = """
routes:
  - name: echo
    match: {prefix: /echo}
    allow_unauthenticated: true
"""
SLOW_ROUTE = "  - name: slow\n    match: {path: /slow}\n    allow_unauthenticated: true\n"


async def _status(url: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status


async def _wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_reload_on_file_change_and_broken_file_keeps_serving(
    backend: Backend, launch: Launcher, tmp_path: Path
) -> None:
    gw = launch(backend.url, routes=RELOAD_ROUTES, extra="reload: {watch: true, interval: 100ms}\n")
    await wait_ready(gw)
    policy = tmp_path / "policies" / "routes.yaml"
    assert await _status(f"{gw.url}/echo") == 200
    assert await _status(f"{gw.url}/status/201") == 404

    policy.write_text(RELOAD_ROUTES + "  - name: status\n    match: {path: '/status/{code'}\n")

    async def rejected() -> bool:
        return "reload rejected" in gw.log()

    await _wait_for(rejected)
    assert "policies/routes.yaml: routes[1].match.path: unbalanced '{'" in gw.log()
    assert await _status(f"{gw.url}/echo") == 200  # the old config keeps serving

    policy.write_text(
        RELOAD_ROUTES
        + "  - name: status\n    match: {path: '/status/{code}'}\n    allow_unauthenticated: true\n"
    )

    async def reloaded() -> bool:
        return await _status(f"{gw.url}/status/201") == 201

    await _wait_for(reloaded)
    assert gw.stop() == 0


async def test_sighup_reloads(backend: Backend, launch: Launcher, tmp_path: Path) -> None:
    gw = launch(backend.url, routes=RELOAD_ROUTES, extra="reload: {watch: false}\n")
    await wait_ready(gw)
    (tmp_path / "policies" / "more.yaml").write_text(
        "routes:\n  - name: slow\n    match: {path: /slow}\n    allow_unauthenticated: true\n"
    )
    assert await _status(f"{gw.url}/slow?s=0") == 404
    gw.signal(signal.SIGHUP)

    async def reloaded() -> bool:
        return await _status(f"{gw.url}/slow?s=0") == 200

    await _wait_for(reloaded)


async def test_one_gib_upload_streams_with_bounded_memory(
    backend: Backend, launch: Launcher
) -> None:
    routes = "routes:\n  - name: big\n    match: {prefix: /}\n    max_body: 2GiB\n    allow_unauthenticated: true\n"
    gw = launch(backend.url, routes=routes)
    await wait_ready(gw)
    baseline = rss_kib(gw.proc.pid)
    block = b"\xa5" * (1 << 20)
    total = 1 << 30

    async def body() -> AsyncIterator[bytes]:
        for _ in range(total // len(block)):
            yield block

    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{gw.url}/sink", data=body(), headers={"Content-Length": str(total)}) as r,
    ):
        assert r.status == 200
        result = await r.json()
    assert result["size"] == total
    growth_mib = (peak_rss_kib(gw.proc.pid) - baseline) / 1024
    assert growth_mib < 64, f"gateway RSS grew {growth_mib:.0f} MiB for a 1 GiB upload"


async def test_large_download_streams_with_bounded_memory(
    backend: Backend, launch: Launcher
) -> None:
    gw = launch(backend.url)
    await wait_ready(gw)
    baseline = rss_kib(gw.proc.pid)
    size = 512 << 20
    seen = 0
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/download?size={size}&chunked=1") as r:
        async for chunk in r.content.iter_chunked(1 << 20):
            seen += len(chunk)
    assert seen == size
    assert (peak_rss_kib(gw.proc.pid) - baseline) / 1024 < 64


async def _raw(port: int, request: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "bad_request"),
        (b"NOT-HTTP\r\n\r\n", 400, "bad_request"),
        (b"GET /" + b"p" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "bad_request",
        ),
    ],
)
async def test_parser_rejections_are_clean_json(
    backend: Backend, launch: Launcher, request_bytes: bytes, status: int, code: str
) -> None:
    gw = launch(backend.url)
    await wait_ready(gw)
    head, body = await _raw(gw.port, request_bytes)
    assert re.match(rb"HTTP/1\.[01] %d " % status, head), head
    parsed = json.loads(body)
    assert parsed["error"] == code
    assert set(parsed) == {"error", "message", "request_id"}
    assert b"aaaa" not in body
    assert b"pppp" not in body
    gw.stop()
    log = gw.log()
    assert "Traceback" not in log
    assert "rejected malformed request" in log


SECRETS = ("123-45-6789", "4111111111111111", "s3ss10n-c00kie", "Bearer tok-xyz", "hunter2pass")


async def test_logs_never_hold_bodies_cookies_or_credentials(
    backend: Backend, launch: Launcher, tmp_path: Path
) -> None:
    gw = launch(backend.url, extra="logging: {level: debug}\n")
    await wait_ready(gw)
    async with aiohttp.ClientSession() as s:
        for path in ("/echo", "/status/500", "/nowhere/x", "/slow?s=0"):
            async with s.post(
                f"{gw.url}{path}",
                json={"ssn": SECRETS[0], "card": SECRETS[1], "password": SECRETS[4]},
                headers={"Cookie": f"session={SECRETS[2]}", "Authorization": SECRETS[3]},
            ) as r:
                await r.read()
    assert gw.stop() == 0
    everything = gw.log()
    for file in (tmp_path / "data").rglob("*"):
        if file.is_file():
            everything += file.read_text(errors="replace")
    for secret in SECRETS:
        assert secret not in everything
    assert re.search(r'"msg":"request".*"status":200', everything)


async def test_reload_follows_a_configmap_style_symlink_swap(
    backend: Backend, launch: Launcher, tmp_path: Path
) -> None:
    """Kubernetes updates a ConfigMap by swapping a ``..data`` symlink to a new directory."""
    template = launch(
        backend.url, routes=RELOAD_ROUTES, extra="reload: {watch: true, interval: 100ms}\n"
    )
    template.stop()
    mount = tmp_path / "mount"
    for version, routes in (
        ("..2026_01", RELOAD_ROUTES),
        ("..2026_02", RELOAD_ROUTES + SLOW_ROUTE),
    ):
        (mount / version / "policies").mkdir(parents=True)
        (mount / version / "gateway.yaml").write_text(
            template.config.read_text().replace("data_dir: data", f"data_dir: {tmp_path / 'data'}")
        )
        (mount / version / "policies" / "routes.yaml").write_text(routes)
    (mount / "..data").symlink_to("..2026_01")
    (mount / "gateway.yaml").symlink_to("..data/gateway.yaml")
    (mount / "policies").symlink_to("..data/policies")
    gw = start_gateway(mount / "gateway.yaml", template.port, template.admin_port)
    try:
        await wait_ready(gw)
        assert await _status(f"{gw.url}/slow?s=0") == 404
        (mount / "..data_tmp").symlink_to("..2026_02")
        (mount / "..data_tmp").rename(mount / "..data")  # atomic swap, as the kubelet does

        async def reloaded() -> bool:
            return await _status(f"{gw.url}/slow?s=0") == 200

        await _wait_for(reloaded)
    finally:
        gw.stop()
