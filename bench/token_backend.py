"""The backend of the tokenization benchmark: ``python -m bench.token_backend --port P ...``.

It does as little as possible, so that what the benchmark measures is the
gateway's work on the body, not the app's:

- ``POST /login``: answers alice's login with a ``Tokengate-Login`` assertion
  (HS256, the secret file shared with the gateway), as an existing app would;
- ``POST /ingest``: reads the body and answers ``{"ok":true}`` (no echo, so the
  response carries nothing to detokenize);
- ``POST /list``: keeps the body it received (through the gateway: tokens) as the
  list, answers ``{"ok":true}``;
- ``GET /list``: that list, the same bytes on every request.

One process, uvloop, no access log. Users other than alice are refused.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import uvloop
from aiohttp import web

USER = "alice"
LIST = web.AppKey("list", bytearray)
SECRET = web.AppKey("secret", bytes)
OK = b'{"ok":true}'


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def login_assertion(secret: bytes, nonce: str, *, now: float) -> str:
    """The HS256 ``Tokengate-Login`` JWT for alice, bound to the gateway's ``nonce``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "tokengate-login+jwt"}).encode())
    claims = {
        "aud": "tokengate",
        "iat": int(now),
        "exp": int(now) + 30,
        "jti": secrets.token_hex(16),
        "nonce": nonce,
        "sub": USER,
        "roles": ["user"],
        "tenant": "bench",
        "amr": ["pwd"],
    }
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


async def login(request: web.Request) -> web.Response:
    body = await request.json()
    nonce = request.headers.get("Tokengate-Login-Nonce")
    if body.get("username") != USER or nonce is None:
        return web.json_response({"error": "unknown user"}, status=401)
    token = login_assertion(request.app[SECRET], nonce, now=time.time())
    return web.json_response({"user": USER}, headers={"Tokengate-Login": token})


async def ingest(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=OK, content_type="application/json")


async def keep_list(request: web.Request) -> web.Response:
    kept = request.app[LIST]
    kept[:] = await request.read()
    return web.Response(body=OK, content_type="application/json")


async def read_list(request: web.Request) -> web.Response:
    return web.Response(body=bytes(request.app[LIST]), content_type="application/json")


def make_app(secret: bytes) -> web.Application:
    """The four routes above, with an empty list."""
    app = web.Application()
    app[SECRET] = secret
    app[LIST] = bytearray(b'{"items":[]}')
    app.router.add_post("/login", login)
    app.router.add_post("/ingest", ingest)
    app.router.add_post("/list", keep_list)
    app.router.add_get("/list", read_list)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.token_backend", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret-file", type=Path, required=True, help="login assertion HS256 key")
    args = p.parse_args(argv)
    app = make_app(args.secret_file.read_bytes().removesuffix(b"\n"))
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
