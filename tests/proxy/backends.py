"""A real upstream for proxy tests: an aiohttp server with handlers for each behaviour."""

from __future__ import annotations

import asyncio
import hashlib
import json

from aiohttp import WSMsgType, web

PEERS = web.AppKey("peers", list[tuple[str, int]])


def make_backend() -> web.Application:
    """Echo, streaming, slow, broken and WebSocket endpoints; records peers per request."""
    app = web.Application(client_max_size=1024**3)
    peers: list[tuple[str, int]] = []
    app[PEERS] = peers

    async def echo(request: web.Request) -> web.Response:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        if peer:
            peers.append((peer[0], peer[1]))
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.raw_path,
                "headers": {k: v for k, v in request.headers.items()},
                "header_list": [[k, v] for k, v in request.headers.items()],
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "body_len": len(body),
                "chunked": request.headers.get("Transfer-Encoding", "") == "chunked",
            },
            headers={
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "1",
                "Keep-Alive": "timeout=5",
            },
        )

    async def sink(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def download(request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("size", "1048576"))
        chunked = request.query.get("chunked") == "1"
        resp = web.StreamResponse()
        if not chunked:
            resp.content_length = size
        await resp.prepare(request)
        block = b"x" * 65536
        left = size if request.method != "HEAD" else 0
        while left > 0:
            await resp.write(block[: min(left, len(block))])
            left -= min(left, len(block))
        await resp.write_eof()
        return resp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "5")))
        return web.Response(text="late")

    async def broken(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b"partial")
        await asyncio.sleep(0.05)
        if request.transport is not None:
            request.transport.abort()
        return resp

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse(protocols=("echo.v1",))
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == WSMsgType.TEXT:
                if msg.data == "close":
                    await sock.close(code=4001, message=b"bye")
                else:
                    await sock.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sock.send_bytes(msg.data[::-1])
        return sock

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        if code in (204, 304):
            return web.Response(status=code)
        return web.Response(
            status=code, text=json.dumps({"code": code}), content_type="application/json"
        )

    app.router.add_route("*", "/echo{tail:.*}", echo)
    app.router.add_post("/sink", sink)
    app.router.add_get("/download", download)
    app.router.add_get("/slow", slow)
    app.router.add_get("/broken", broken)
    app.router.add_get("/ws", ws)
    app.router.add_route("*", "/status/{code}", status)
    return app
