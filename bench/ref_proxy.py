"""The Python floor: the least an aiohttp reverse proxy must do, and nothing more.

``python bench/ref_proxy.py --port 9000 --upstream http://127.0.0.1:8000``

uvloop, one pooled ClientSession (no decompression, no cookie jar, no added
headers), bodies streamed both ways, hop-by-hop headers (RFC 9110 7.6.1 and any
named in Connection) stripped both ways, 502 when the upstream cannot be reached.
No routing, auth, limits, logging or X-Forwarded-*: tokengate is measured against it.
"""

from __future__ import annotations

import argparse

import aiohttp
import uvloop
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

_HOP = ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer")
HOP = frozenset((*_HOP, "transfer-encoding", "upgrade", "proxy-connection", "host"))
SESSION = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


def strip(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """Drop hop-by-hop headers, those named in Connection, and Host (the upstream's own)."""
    named = {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",")}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP | named)


async def handle(request: web.Request) -> web.StreamResponse:
    body = request.content.iter_any() if request.body_exists else None
    url = request.app[UPSTREAM] + request.rel_url.raw_path_qs
    try:
        up = await request.app[SESSION].request(
            request.method, url, headers=strip(request.headers), data=body, allow_redirects=False
        )
    except (aiohttp.ClientConnectionError, TimeoutError):
        return web.Response(status=502, text="bad gateway")
    async with up:  # a failure after prepare() propagates: the client sees a broken connection
        resp = web.StreamResponse(status=up.status, reason=up.reason, headers=strip(up.headers))
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
    return resp


async def make_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM] = upstream.rstrip("/")
    app[SESSION] = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
    )
    app.on_cleanup.append(lambda a: a[SESSION].close())
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="minimal aiohttp reverse proxy (bench floor)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    a = p.parse_args()
    app = make_app(a.upstream)
    web.run_app(
        app, host=a.host, port=a.port, access_log=None, print=None, loop=uvloop.new_event_loop()
    )
