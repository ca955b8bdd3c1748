"""WebSocket passthrough: echo both ways, subprotocol, close codes, per-route allowance."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.proxy.conftest import Backend, Gateway, GatewayFactory, write_config


async def test_websocket_echo_and_close_code(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(f"{gateway.url}/ws", protocols=("echo.v1",)) as ws,
    ):
        assert ws.protocol == "echo.v1"
        await ws.send_str("hello")
        assert (await ws.receive_str()) == "echo:hello"
        await ws.send_bytes(b"\x01\x02\x03")
        assert (await ws.receive_bytes()) == b"\x03\x02\x01"
        await ws.send_str("close")
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4001


async def test_websocket_refused_where_route_disallows(
    tmp_path: Path, backend: Backend, start_gateway: GatewayFactory
) -> None:
    routes = """
    routes:
      - name: no-ws
        match: {prefix: /}
        allow_unauthenticated: true
    """
    gw = await start_gateway(write_config(tmp_path, backend.url, routes))
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await s.ws_connect(f"{gw.url}/ws")
    assert info.value.status == 403
