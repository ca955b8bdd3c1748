"""Forwarding over real sockets: bodies, framing, hop-by-hop headers, errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.proxy.backends import PEERS
from tests.proxy.conftest import Backend, Gateway, GatewayFactory, write_config


async def test_get_passes_path_query_and_request_id(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{gateway.url}/echo/a%20b?x=1&y=%2B", headers={"X-Request-ID": "req-12345678"}) as r,
    ):
        assert r.status == 200
        body = await r.json()
    assert body["path"] == "/echo/a%20b?x=1&y=%2B"
    assert body["headers"]["X-Request-ID"] == "req-12345678"
    assert r.headers["X-Request-ID"] == "req-12345678"


async def test_unsafe_request_id_is_replaced(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{gateway.url}/echo", headers={"X-Request-ID": "bad id\twith tabs"}) as r,
    ):
        body = await r.json()
    assert body["headers"]["X-Request-ID"] != "bad id\twith tabs"
    assert len(body["headers"]["X-Request-ID"]) == 32


async def test_post_body_with_content_length_is_not_rechunked(gateway: Gateway) -> None:
    payload = os.urandom(300_000)
    async with aiohttp.ClientSession() as s, s.post(f"{gateway.url}/echo", data=payload) as r:
        body = await r.json()
    assert body["body_len"] == len(payload)
    assert body["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert body["headers"]["Content-Length"] == str(len(payload))
    assert not body["chunked"]


async def test_chunked_request_body_stays_chunked(gateway: Gateway) -> None:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(10):
            yield bytes([i]) * 1000

    async with aiohttp.ClientSession() as s, s.post(f"{gateway.url}/echo", data=gen()) as r:
        body = await r.json()
    assert body["chunked"]
    assert body["body_len"] == 10_000
    assert "Content-Length" not in body["headers"]


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_download_framing_preserved(gateway: Gateway, chunked: str) -> None:
    size = 5 * 1024 * 1024 + 7
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{gateway.url}/download?size={size}&chunked={chunked}") as r,
    ):
        data = await r.read()
        assert len(data) == size
        if chunked == "1":
            assert r.headers.get("Transfer-Encoding") == "chunked"
            assert "Content-Length" not in r.headers
        else:
            assert r.headers["Content-Length"] == str(size)


async def test_hop_by_hop_headers_stripped_both_ways(gateway: Gateway) -> None:
    headers = {
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "secret-hop",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "X-Keep-Me": "yes",
    }
    async with aiohttp.ClientSession() as s, s.get(f"{gateway.url}/echo", headers=headers) as r:
        body = await r.json()
        response_headers = r.headers
    sent = {k.lower() for k in body["headers"]}
    for gone in ("x-drop-me", "keep-alive", "te", "proxy-authorization"):
        assert gone not in sent
    assert body["headers"]["X-Keep-Me"] == "yes"
    # The backend listed X-Secret-Hop in its Connection header: it must not reach the client.
    assert "X-Secret-Hop" not in response_headers
    assert "Keep-Alive" not in response_headers


async def test_keep_alive_connections_reused(gateway: Gateway, backend: Backend) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(20):
            async with s.get(f"{gateway.url}/echo") as r:
                await r.read()
    ports = {port for _, port in backend.app[PEERS]}
    assert len(backend.app[PEERS]) == 20
    assert len(ports) == 1  # one pooled upstream connection served them all


async def test_unmatched_request_is_404_json(
    tmp_path: Path, backend: Backend, start_gateway: GatewayFactory
) -> None:
    routes = """
    routes:
      - name: only-echo
        match: {prefix: /echo, methods: [GET]}
        allow_unauthenticated: true
    """
    gw = await start_gateway(write_config(tmp_path, backend.url, routes))
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.url}/echo") as r:
            assert r.status == 200
        async with s.get(f"{gw.url}/elsewhere") as r:
            assert r.status == 404
            body = await r.json()
            assert body["error"] == "not_found"
            assert set(body) == {"error", "message", "request_id"}
        async with s.post(f"{gw.url}/echo") as r:
            assert r.status == 405
            assert r.headers["Allow"] == "GET"


async def test_upstream_refused_is_502(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    gw = await start_gateway(write_config(tmp_path, f"http://127.0.0.1:{free_port()}"))
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/echo") as r:
        assert r.status == 502
        body = await r.json()
    assert body["error"] == "upstream_unavailable"
    assert "127.0.0.1" not in json.dumps(body)


async def test_upstream_timeout_is_504(
    tmp_path: Path, backend: Backend, start_gateway: GatewayFactory
) -> None:
    routes = """
    routes:
      - name: slow
        match: {prefix: /}
        timeouts: {read: 200ms}
        allow_unauthenticated: true
    """
    gw = await start_gateway(write_config(tmp_path, backend.url, routes))
    async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/slow?s=3") as r:
        assert r.status == 504
        assert (await r.json())["error"] == "upstream_timeout"


async def test_connect_timeout_is_504(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    # A listening socket whose accept queue is full never completes new handshakes.
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(0)
    port = blocker.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        routes = """
        routes:
          - name: all
            match: {prefix: /}
            timeouts: {connect: 300ms}
            allow_unauthenticated: true
        """
        gw = await start_gateway(write_config(tmp_path, f"http://127.0.0.1:{port}", routes))
        async with aiohttp.ClientSession() as s, s.get(f"{gw.url}/x") as r:
            assert r.status in (502, 504)
            assert (await r.json())["error"] in ("upstream_timeout", "upstream_unavailable")
    finally:
        for c in fillers:
            c.close()
        blocker.close()


async def test_declared_body_over_limit_is_413(
    tmp_path: Path, backend: Backend, start_gateway: GatewayFactory
) -> None:
    routes = """
    routes:
      - name: small
        match: {prefix: /}
        max_body: 1KiB
        allow_unauthenticated: true
    """
    gw = await start_gateway(write_config(tmp_path, backend.url, routes))
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.url}/echo", data=b"x" * 1024) as r:
            assert r.status == 200
        async with s.post(f"{gw.url}/echo", data=b"x" * 1025) as r:
            assert r.status == 413
            assert (await r.json())["error"] == "payload_too_large"
    assert len(backend.app[PEERS]) == 1  # the oversized one never reached the backend


async def test_streamed_body_over_limit_is_413(
    tmp_path: Path, backend: Backend, start_gateway: GatewayFactory
) -> None:
    routes = """
    routes:
      - name: small
        match: {prefix: /}
        max_body: 64KiB
        allow_unauthenticated: true
    """
    gw = await start_gateway(write_config(tmp_path, backend.url, routes))

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 8192

    async with aiohttp.ClientSession() as s, s.post(f"{gw.url}/sink", data=gen()) as r:
        assert r.status == 413
        assert (await r.json())["error"] == "payload_too_large"


async def test_mid_response_failure_aborts_client(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with s.get(f"{gateway.url}/broken") as r:
                await r.read()


@pytest.mark.parametrize("code", [201, 204, 304, 404, 500])
async def test_upstream_status_passed_through(gateway: Gateway, code: int) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gateway.url}/status/{code}") as r:
        assert r.status == code
        await r.read()


async def test_head_request(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s, s.head(f"{gateway.url}/download?size=1000") as r:
        assert r.status == 200
        assert r.headers["Content-Length"] == "1000"
        assert await r.read() == b""


@pytest.mark.parametrize(
    "target",
    [
        "/echo/../admin",
        "/echo/%2e%2e/admin",
        "/echo%2fadmin",
        "/echo/a%5cb",
        "/echo/./x",
        "/echo/%00",
    ],
)
async def test_ambiguous_paths_refused(gateway: Gateway, target: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(body)["error"] == "bad_request"


async def test_headers_are_not_held_back_while_the_body_is_still_coming(
    tmp_path: Path, start_gateway: GatewayFactory
) -> None:
    """Only a body that has wholly arrived is sent in one piece with the headers."""
    release = asyncio.Event()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Late: 1\r\n\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gw = await start_gateway(write_config(tmp_path, f"http://127.0.0.1:{port}"))
        async with aiohttp.ClientSession() as s:
            r = await asyncio.wait_for(s.get(f"{gw.url}/late"), timeout=10)
            async with r:
                assert (r.status, r.headers["X-Late"], r.content_length) == (200, "1", 5)
                release.set()
                assert await r.read() == b"hello"
    finally:
        release.set()
        server.close()
        await server.wait_closed()
