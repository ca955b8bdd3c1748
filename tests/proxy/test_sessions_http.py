"""Sessions through the gateway over real sockets: login, rules, CSRF, refresh, logout, proofs."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from yarl import URL

from proxy.proof.errors import ProofError
from proxy.proof.message_signature import RequestView
from proxy.proof.signature_verifier import MessageVerifier
from tests.conftest import free_port
from tests.proxy.conftest import Gateway, GatewayFactory, write_config
from tests.proxy.session_backend import SEEN, make_session_backend

ROUTES = """
routes:
  - name: login
    match: {methods: [POST], path: /login}
    allow_unauthenticated: true
  - name: logout
    match: {methods: [POST], path: /logout}
    allow_unauthenticated: true
  - name: support-only
    match: {path: /whoami/support}
    auth: {roles: [support]}
  - name: step-up
    match: {path: /whoami/mfa}
    auth: {mfa: true, max_age: 5m}
  - name: signed-body
    match: {path: /whoami/signed}
    auth: {sign_body: true}
  - name: me
    match: {prefix: /whoami}
    auth: {}
  - name: public
    match: {prefix: /echo}
    allow_unauthenticated: true
"""


@dataclass
class Env:
    gw: Gateway
    backend: web.Application


def sessions_yaml(tmp_path: Path, secret: bytes, extra: str = "") -> str:
    secret_file = tmp_path / "login.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    return f"""
sessions:
  cookies: {{access: tg-at, refresh: tg-rt, secure: false}}
  login: {{route: login, secret_file: {secret_file}}}
  store: {{uri: "sqlite:sessions.db", refresh_grace: 0s}}
{extra}"""


@pytest.fixture
async def env(tmp_path: Path, start_gateway: GatewayFactory) -> AsyncIterator[Env]:
    secret = secrets.token_urlsafe(32).encode()
    backend = make_session_backend(secret)
    runner = web.AppRunner(backend, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = write_config(
        tmp_path, f"http://127.0.0.1:{port}", ROUTES, sessions_yaml(tmp_path, secret)
    )
    gw = await start_gateway(config)
    yield Env(gw, backend)
    await runner.cleanup()


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(
    s: aiohttp.ClientSession, env: Env, user: str = "alice", **extra: str
) -> aiohttp.ClientResponse:
    async with s.post(
        f"{env.gw.url}/login", json={"user": user, **extra}, headers={"Origin": env.gw.url}
    ) as r:
        await r.read()
        return r


async def test_login_sets_session_cookies_and_strips_the_assertion(env: Env) -> None:
    async with client() as s:
        r = await login(s, env)
        assert r.status == 200
        assert "Tokengate-Login" not in r.headers
        cookies = {c.key: c for c in s.cookie_jar}
        assert {"tg-at", "tg-rt"} <= set(cookies)
        assert cookies["tg-at"]["httponly"]
        assert cookies["tg-at"]["samesite"] == "Lax"
        async with s.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 200


async def test_login_without_amr_gives_a_working_session_at_acr_0(env: Env) -> None:
    async with client() as s:
        r = await login(s, env, no_amr="1")
        assert r.status == 200
        access = {c.key: c.value for c in s.cookie_jar}["tg-at"]
        payload = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
        assert (payload["amr"], payload["acr"]) == ([], "0")
        async with s.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 200
            assert "Set-Cookie" not in r.headers  # the access token itself verified: no refresh


async def test_no_session_is_401_for_api_and_redirect_for_navigation(env: Env) -> None:
    async with client() as s:
        async with s.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await r.json())["error"] == "unauthorized"
        async with s.get(
            f"{env.gw.url}/whoami/x?y=1",
            headers={"Sec-Fetch-Mode": "navigate"},
            allow_redirects=False,
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/login?return_to=%2Fwhoami%2Fx%3Fy%3D1"
    assert env.backend[SEEN] == []


async def test_cross_site_login_is_refused(env: Env) -> None:
    async with client() as s:
        async with s.post(
            f"{env.gw.url}/login",
            json={"user": "alice"},
            headers={"Origin": "https://evil.example"},
        ) as r:
            assert r.status == 403
            assert (await r.json())["error"] == "csrf_refused"
        assert not list(s.cookie_jar)


async def test_login_refused_when_the_nonce_does_not_match(env: Env) -> None:
    async with client() as s:
        r = await login(s, env, nonce="not-the-gateways")
        assert r.status == 401
        assert not [c for c in s.cookie_jar if c.key == "tg-at"]


async def test_login_refused_when_assertion_has_wrong_audience(env: Env) -> None:
    async with client() as s:
        r = await login(s, env, aud="someone-else")
        assert r.status == 401


async def test_roles_and_step_up(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        async with s.get(f"{env.gw.url}/whoami/support") as r:
            assert r.status == 403
            assert (await r.json())["error"] == "forbidden"
        async with s.get(f"{env.gw.url}/whoami/mfa") as r:
            assert r.status == 401
            challenge = r.headers["WWW-Authenticate"]
            assert 'error="insufficient_user_authentication"' in challenge
            assert 'max_age="300"' in challenge
    async with client() as s:
        await login(s, env, "carol")
        async with s.get(f"{env.gw.url}/whoami/support") as r:
            assert r.status == 200


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": "https://evil.example"}, False),
        ({}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "SELF"}, True),
    ],
)
async def test_csrf_on_cookie_sessions(env: Env, headers: dict[str, str], allowed: bool) -> None:
    headers = {k: (env.gw.url if v == "SELF" else v) for k, v in headers.items()}
    async with client() as s:
        await login(s, env)
        async with s.post(f"{env.gw.url}/whoami", data=b"x", headers=headers) as r:
            assert (r.status == 200) is allowed
            if not allowed:
                assert (await r.json())["error"] == "csrf_refused"


async def test_bearer_token_needs_no_csrf_evidence(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        token = next(c.value for c in s.cookie_jar if c.key == "tg-at")
    async with aiohttp.ClientSession() as s2:
        async with s2.post(
            f"{env.gw.url}/whoami", data=b"x", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200


SPOOFS = {
    "Tokengate-Identity": "forged",
    "tokengate-signature-hint": "x",
    "TOKENGATE-LOGIN": "forged",
    "X-Remote-User": "admin",
    "x-forwarded-user": "admin",
    "X-Auth-Request-Email": "admin@example.com",
}


async def test_spoofed_identity_headers_never_reach_the_backend(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        async with s.get(f"{env.gw.url}/whoami", headers=SPOOFS) as r:
            seen = (await r.json())["headers"]
    # Underscore variants travel as raw header lines (aiohttp's client would refuse them).
    reader, writer = await asyncio.open_connection("127.0.0.1", env.gw.port)
    writer.write(
        b"GET /echo HTTP/1.1\r\nHost: x\r\nTokengate_Identity: forged\r\nX_Remote_User: admin\r\n"
        b"Connection: close\r\n\r\n"
    )
    raw = await reader.read()
    writer.close()
    echoed = json.loads(raw.partition(b"\r\n\r\n")[2])["headers"]
    for headers in (seen, echoed):
        names = {k.lower().replace("_", "-") for k in headers}
        assert "x-remote-user" not in names
        assert "x-forwarded-user" not in names
        assert "x-auth-request-email" not in names
        assert headers.get("Tokengate-Identity") not in (None, "forged")
        assert not {n for n in names if n.startswith("tokengate-")} - {"tokengate-identity"}


async def test_every_forwarded_request_is_signed_and_verifies(env: Env) -> None:
    keys = {}
    for jwk in env.gw.keys.jwks("upstream-signing")["keys"]:
        signer = next(s for s in env.gw.keys.verifiers("upstream-signing") if s.kid == jwk["kid"])
        public = signer.public_key()
        assert isinstance(public, Ed25519PublicKey)  # upstream-signing stays Ed25519
        keys[jwk["kid"]] = public
    verifier = MessageVerifier(
        keys=keys,
        label="tokengate",
        required=("@method", "@authority", "@path", "@query", "tokengate-identity"),
    )
    async with client() as s:
        await login(s, env)
        async with s.get(f"{env.gw.url}/whoami/a?b=c") as r:
            seen = (await r.json())["headers"]
        async with s.post(f"{env.gw.url}/whoami/signed", data=b"payload") as r:
            assert r.status == 403  # no Origin: CSRF first
        async with s.post(
            f"{env.gw.url}/whoami/signed", data=b"payload", headers={"Origin": env.gw.url}
        ) as r:
            signed_body = (await r.json())["headers"]
    authority = (
        URL(f"http://127.0.0.1:{env.backend_port}").raw_authority
        if hasattr(env, "backend_port")
        else seen["Host"]
    )
    view = RequestView.build(
        method="GET",
        authority=authority,
        target="/whoami/a?b=c",
        headers=seen.items(),
        scheme="http",
    )
    result = verifier.verify(view, now=time.time(), expect_tag="tokengate-stream")
    assert result is not None
    view = RequestView.build(
        method="POST",
        authority=signed_body["Host"],
        target="/whoami/signed",
        headers=signed_body.items(),
        scheme="http",
    )
    verifier.verify(view, now=time.time(), body=b"payload", expect_tag="tokengate")
    token = seen["Tokengate-Identity"]
    forged = dict(
        seen, **{"Tokengate-Identity": token[:20] + ("B" if token[20] != "B" else "C") + token[21:]}
    )
    view = RequestView.build(
        method="GET",
        authority=authority,
        target="/whoami/a?b=c",
        headers=forged.items(),
        scheme="http",
    )
    with pytest.raises(ProofError):
        verifier.verify(view, now=time.time(), expect_tag="tokengate-stream")


async def test_refresh_serves_the_request_and_rotates(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        old_refresh = next(c.value for c in s.cookie_jar if c.key == "tg-rt")
        s.cookie_jar.clear(lambda c: c.key == "tg-at")  # the access token "expired"
        async with s.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 200
            assert "tg-at" in r.cookies
            assert "tg-rt" in r.cookies
        new_refresh = next(c.value for c in s.cookie_jar if c.key == "tg-rt")
        assert new_refresh != old_refresh
    # Reuse of the rotated token (grace 0 s) revokes the whole family.
    async with client() as thief:
        thief.cookie_jar.update_cookies({"tg-rt": old_refresh}, URL(env.gw.url))
        async with thief.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 401
    async with client() as s2:
        s2.cookie_jar.update_cookies({"tg-rt": new_refresh}, URL(env.gw.url))
        async with s2.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 401


async def test_logout_revokes_the_session_everywhere(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        token = next(c.value for c in s.cookie_jar if c.key == "tg-at")
        async with s.post(f"{env.gw.url}/logout", headers={"Origin": env.gw.url}) as r:
            assert r.status == 200
            assert "Tokengate-Logout" not in r.headers
        assert not [c for c in s.cookie_jar if c.key == "tg-at" and c.value]
    async with aiohttp.ClientSession() as s2:
        async with s2.get(
            f"{env.gw.url}/whoami", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 401


async def test_gateway_logout_endpoint(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        token = next(c.value for c in s.cookie_jar if c.key == "tg-at")
        async with s.post(f"{env.gw.url}/.tokengate/logout") as r:
            assert r.status == 403  # CSRF: no same-origin evidence
        async with s.get(f"{env.gw.url}/.tokengate/logout") as r:
            assert r.status == 405
        async with s.get(f"{env.gw.url}/.tokengate/nothing") as r:
            assert r.status == 404
        async with s.post(f"{env.gw.url}/.tokengate/logout", headers={"Origin": env.gw.url}) as r:
            assert r.status == 200
    async with aiohttp.ClientSession() as s2:
        async with s2.get(
            f"{env.gw.url}/whoami", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 401


@pytest.mark.parametrize(("trusted", "allowed"), [("[127.0.0.0/8]", True), ("[]", False)])
async def test_csrf_origin_behind_a_tls_terminating_ingress(
    tmp_path: Path, start_gateway: GatewayFactory, trusted: str, allowed: bool
) -> None:
    secret = secrets.token_urlsafe(32).encode()
    backend = make_session_backend(secret)
    runner = web.AppRunner(backend, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        extra = sessions_yaml(tmp_path, secret) + f"trusted_proxies: {trusted}\n"
        gw = await start_gateway(write_config(tmp_path, f"http://127.0.0.1:{port}", ROUTES, extra))
        # The browser used https://app.example; the ingress says so in X-Forwarded-*.
        forwarded = {
            "Origin": "https://app.example",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.example",
        }
        async with client() as s:
            async with s.post(f"{gw.url}/login", json={"user": "alice"}, headers=forwarded) as r:
                assert (r.status == 200) is allowed
                if not allowed:
                    assert (await r.json())["error"] == "csrf_refused"
    finally:
        await runner.cleanup()
