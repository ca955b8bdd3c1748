"""The JWKS cache: what counts as a key, where keys may come from, and when they are fetched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from demo_backend.jwks import MAX_JWKS_BYTES, JwksCache, JwksError, check_jwks_url, parse_jwks

from tests.conftest import free_port
from tests.demo_backend.proof_support import jwk_of, new_key
from tests.demo_backend.support import Clock

type Serve = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.mark.parametrize(
    "url",
    [
        "https://gw.example/.well-known/tokengate/jwks.json",
        "http://127.0.0.1:8443/.well-known/tokengate/jwks.json",
        "http://127.3.4.5/jwks.json",
        "http://[::1]:8443/jwks.json",
        "http://localhost:8443/jwks.json",
    ],
)
def test_acceptable_urls(url: str) -> None:
    assert check_jwks_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://gw.example/jwks.json",
        "http://10.0.0.1/jwks.json",
        "http://localhost.evil.example/jwks.json",
        "ftp://gw.example/jwks.json",
        "file:///etc/jwks.json",
        "https://user:pw@gw.example/jwks.json",
        "https:///jwks.json",
        "https://gw.example/jwks.json#frag",
        "jwks.json",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(ValueError, match="JWKS URL"):
        check_jwks_url(url)


def test_parse_keeps_ed25519_signing_keys_only() -> None:
    key = new_key()
    others = [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"},
        {"kty": "OKP", "crv": "X25519", "x": "AA", "kid": "x"},
        {**jwk_of(new_key()), "use": "enc"},
        {**jwk_of(new_key()), "alg": "ES256"},
    ]
    keys = parse_jwks({"keys": [*others, jwk_of(key)]})
    assert list(keys) == [key.kid]


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {},
        {"keys": {}},
        {"keys": []},
        {"keys": ["not an object"]},
        {"keys": [{**jwk_of(new_key()), "d": "private"}]},
        {"keys": [{**jwk_of(new_key()), "kid": ""}]},
        {"keys": [{**jwk_of(new_key()), "kid": 7}]},
        {"keys": [{**jwk_of(new_key()), "x": "AAAA"}]},
        {"keys": [{**jwk_of(new_key()), "x": "not+base64"}]},
        {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "ec"}]},
        {"keys": [jwk_of(new_key())] * 2},
        {"keys": [jwk_of(new_key()) for _ in range(65)]},
    ],
    ids=lambda v: str(v)[:30],
)
def test_parse_refuses(document: object) -> None:
    with pytest.raises(JwksError):
        parse_jwks(document)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Serve], Awaitable[str]]]:
    servers: list[TestServer] = []

    async def start(handler: Serve) -> str:
        app = web.Application()
        app.router.add_get("/jwks.json", handler)
        server = TestServer(app)
        servers.append(server)
        await server.start_server()
        return str(server.make_url("/jwks.json"))

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_concurrent_unknown_kids_share_one_fetch(
    serve: Callable[[Serve], Awaitable[str]], session: aiohttp.ClientSession, clock: Clock
) -> None:
    first, second = new_key(), new_key()
    published = [jwk_of(first)]
    fetches = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal fetches
        fetches += 1
        return web.json_response({"keys": published})

    cache = JwksCache(url=await serve(handler), session=session, now=clock)
    await cache.load()
    assert cache.get(first.kid) is not None
    assert cache.get(second.kid) is None
    published.append(jwk_of(second))
    clock.advance(30)
    found = await asyncio.gather(*(cache.lookup(second.kid) for _ in range(5)))
    assert all(key is not None for key in found)
    assert fetches == 2
    # An unknown kid right after a fetch waits for the rate limit.
    assert await cache.lookup(new_key().kid) is None
    assert fetches == 2


@pytest.mark.parametrize("problem", ["redirect", "too-large", "chunked-too-large", "html", "500"])
async def test_bad_answers_fail_the_fetch(
    serve: Callable[[Serve], Awaitable[str]],
    session: aiohttp.ClientSession,
    clock: Clock,
    problem: str,
) -> None:
    good = json.dumps({"keys": [jwk_of(new_key())]})

    async def handler(request: web.Request) -> web.StreamResponse:
        if problem == "redirect":
            raise web.HTTPFound("/elsewhere")
        if problem == "too-large":
            padding = " " * MAX_JWKS_BYTES
            return web.Response(text=good + padding, content_type="application/json")
        if problem == "chunked-too-large":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(MAX_JWKS_BYTES // 1024 + 2):
                await resp.write(b" " * 1024)
            await resp.write_eof()
            return resp
        if problem == "html":
            return web.Response(text="<html></html>", content_type="text/html")
        return web.Response(status=500)

    cache = JwksCache(url=await serve(handler), session=session, now=clock)
    with pytest.raises(JwksError):
        await cache.load()


async def test_a_hanging_server_times_out(
    serve: Callable[[Serve], Awaitable[str]], session: aiohttp.ClientSession, clock: Clock
) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"keys": []})

    cache = JwksCache(url=await serve(handler), session=session, now=clock, timeout=0.2)
    with pytest.raises(JwksError, match="TimeoutError"):
        await cache.load()
    release.set()


async def test_unreachable_server_fails(session: aiohttp.ClientSession, clock: Clock) -> None:
    cache = JwksCache(url=f"http://127.0.0.1:{free_port()}/jwks.json", session=session, now=clock)
    with pytest.raises(JwksError, match="fetch failed"):
        await cache.load()
