"""A backend that asserts logins the way an existing app would (stdlib HMAC JWT), for session tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from aiohttp import web

from tests.proxy.backends import make_backend

SECRET = web.AppKey("secret", bytes)
SEEN = web.AppKey("seen", list[dict[str, str]])
USERS = {"alice": ["user"], "carol": ["support"]}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assertion(secret: bytes, claims: dict[str, object]) -> str:
    """HS256 compact JWS, as the demo app makes it."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "tokengate-login+jwt"}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def make_session_backend(secret: bytes) -> web.Application:
    """The proxy test backend plus /login, /logout and /whoami."""
    app = make_backend()
    app[SECRET] = secret
    app[SEEN] = []

    async def login(request: web.Request) -> web.Response:
        body = await request.json()
        user = body["user"]
        nonce = request.headers.get("Tokengate-Login-Nonce")
        headers = {}
        if nonce is not None and user in USERS:
            now = int(time.time())
            claims = {
                "iss": "test-app",
                "aud": body.get("aud", "tokengate"),
                "iat": now,
                "exp": now + 30,
                "jti": secrets.token_hex(16),
                "nonce": body.get("nonce", nonce),
                "sub": user,
                "roles": USERS[user],
                "tenant": "demo",
                "amr": ["pwd"],
            }
            if body.get("no_amr"):  # an app that asserts no authentication method
                del claims["amr"]
            headers["Tokengate-Login"] = assertion(secret, claims)
        return web.json_response({"user": user}, headers=headers)

    async def logout(request: web.Request) -> web.Response:
        return web.json_response({}, headers={"Tokengate-Logout": "1"})

    async def whoami(request: web.Request) -> web.Response:
        app[SEEN].append(dict(request.headers))
        return web.json_response({"headers": dict(request.headers), "path": request.raw_path})

    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_route("*", "/whoami{tail:.*}", whoami)
    return app
