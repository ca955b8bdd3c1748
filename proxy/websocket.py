"""WebSocket passthrough for routes that allow it.

The gateway connects upstream first, so the client's handshake only succeeds
when the upstream accepted it, with the subprotocol the upstream chose. Then
frames are pumped both ways until either side closes; the close code is
carried across. Messages are relayed, never inspected or logged.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import WSMsgType, web

from proxy.errors import ProxyError
from proxy.forward import ForwardPlan, upstream_headers

log = logging.getLogger("tokengate.websocket")
_WS_HANDSHAKE = (
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol",
)


def is_websocket(request: web.Request) -> bool:
    """Whether the request asks for a WebSocket upgrade."""
    return (
        request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for msg in source:
        if msg.type == WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == WSMsgType.ERROR:
            break
    code = source.close_code or aiohttp.WSCloseCode.OK
    if not sink.closed:
        await sink.close(code=code)


async def relay_websocket(
    request: web.Request, session: aiohttp.ClientSession, plan: ForwardPlan
) -> web.WebSocketResponse:
    """Open the upstream socket, accept the client's, and relay until one closes."""
    headers = upstream_headers(request, plan)
    for name in _WS_HANDSHAKE:
        headers.popall(name, None)
    if plan.hooks is not None:
        plan.hooks.prepare(headers, method=request.method, target=request.raw_path, body=None)
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    ws_url = "ws" + plan.url[4:] if plan.url.startswith("http") else plan.url
    try:
        upstream = await session.ws_connect(
            ws_url,
            headers=headers,
            protocols=protocols,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
            autoping=True,
            max_msg_size=plan.body_limit,
        )
    except aiohttp.WSServerHandshakeError as e:
        raise ProxyError("bad_gateway", f"upstream refused the websocket: {e.status}") from e
    except (TimeoutError, aiohttp.ServerTimeoutError) as e:
        raise ProxyError("upstream_timeout", "websocket connect timed out") from e
    except (aiohttp.ClientError, OSError) as e:
        raise ProxyError("upstream_unavailable", type(e).__name__) from e
    client = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=plan.body_limit
    )
    try:
        await client.prepare(request)
        to_upstream = asyncio.create_task(_pump(client, upstream), name="ws-client-to-upstream")
        to_client = asyncio.create_task(_pump(upstream, client), name="ws-upstream-to-client")
        done, pending = await asyncio.wait(
            (to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if (exc := task.exception()) is not None:
                log.info(
                    "websocket relay ended with %s",
                    type(exc).__name__,
                    extra={"request_id": plan.request_id},
                )
    finally:
        await upstream.close()
        if not client.closed:
            await client.close()
    return client
