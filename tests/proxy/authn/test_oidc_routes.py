"""OIDC login through the gateway over real sockets, against a real OpenID provider process.

The browser is an aiohttp client behind a stand-in TLS-terminating ingress: it
talks plain HTTP to the gateway with the public ``Host`` and
``X-Forwarded-Proto: https`` (the gateway trusts 127.0.0.1 as a proxy), so the
redirect URI the gateway builds is the one registered at the provider. The
provider's own redirects are followed by :func:`tests.proxy.oidc.conftest.authorize`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from proxy.auth.jose import verify
from proxy.proof.identity import TYP as IDENTITY_TYP
from tests.conftest import free_port
from tests.proxy.conftest import Gateway, GatewayFactory, write_config
from tests.proxy.oidc.conftest import authorize, provider  # noqa: F401 - provider is a fixture
from tests.proxy.oidc.provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_PATH,
    USER,
    Provider,
    start_provider,
)
from tests.proxy.session_backend import SEEN, make_session_backend

LOGIN_PATH = "/.tokengate/oidc/login"
FLOW_COOKIE = "tg-oidc"
ROUTES = """
routes:
  - name: me
    match: {prefix: /whoami}
    auth: {}
"""


@dataclass
class Env:
    gw: Gateway
    op: Provider
    backend: web.Application
    data: Path

    @property
    def forwarded(self) -> dict[str, str]:
        """What the ingress adds: the public host and scheme of the provider-registered origin."""
        return {"Host": urlsplit(self.op.origin).netloc, "X-Forwarded-Proto": "https"}

    def audit_text(self) -> str:
        return "".join(
            p.read_text() for p in sorted((self.data / "audit").rglob("*")) if p.is_file()
        )


def sessions_yaml(
    issuer: str, *, oidc: bool = True, trusted: bool = True, secure: bool = False
) -> str:
    section = f"""
  oidc:
    issuer: "{issuer}"
    client_id: {CLIENT_ID}
    client_secret: {CLIENT_SECRET}
    claims: {{roles: roles, tenant: tenant}}
"""
    return (
        ("trusted_proxies: [127.0.0.1/32]\n" if trusted else "")
        + """
sessions:
  store: {uri: "sqlite:sessions.db"}
"""
        + ("" if secure else "  cookies: {access: tg-at, refresh: tg-rt, secure: false}\n")
        + (section if oidc else "")
    )


@pytest.fixture
async def backend_url() -> AsyncIterator[tuple[str, web.Application]]:
    app = make_session_backend(b"x" * 32)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", app
    await runner.cleanup()


async def make_env(
    tmp_path: Path,
    op: Provider,
    backend_url: tuple[str, web.Application],
    start_gateway: GatewayFactory,
    **options: bool,
) -> Env:
    url, app = backend_url
    config = write_config(tmp_path, url, ROUTES, sessions_yaml(op.issuer, **options))
    return Env(await start_gateway(config), op, app, tmp_path / "data")


@pytest.fixture
async def env(
    tmp_path: Path,
    provider: Provider,  # noqa: F811 - the imported fixture
    backend_url: tuple[str, web.Application],
    start_gateway: GatewayFactory,
) -> Env:
    return await make_env(tmp_path, provider, backend_url, start_gateway)


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def set_cookies(resp: aiohttp.ClientResponse) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        jar.load(header)
    return jar


async def start_login(s: aiohttp.ClientSession, env: Env, return_to: str = "/whoami/x?y=1") -> str:
    """GET the login endpoint; the provider URL it redirects to."""
    async with s.get(
        f"{env.gw.url}{LOGIN_PATH}",
        params={"return_to": return_to},
        headers=env.forwarded,
        allow_redirects=False,
    ) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


async def callback(
    s: aiohttp.ClientSession, env: Env, query: str, *, cookie: str | None = None
) -> tuple[aiohttp.ClientResponse, bytes]:
    """GET the callback with the raw query (and, if given, an explicit flow cookie)."""
    headers = dict(env.forwarded)
    if cookie is not None:
        headers["Cookie"] = f"{FLOW_COOKIE}={cookie}"
    url = URL(f"{env.gw.url}{REDIRECT_PATH}?{query}", encoded=True)
    async with s.get(url, headers=headers, allow_redirects=False) as r:
        return r, await r.read()


def flow_cookie(s: aiohttp.ClientSession) -> str:
    return next(c.value for c in s.cookie_jar if c.key == FLOW_COOKIE)


def session_cookies(s: aiohttp.ClientSession) -> set[str]:
    return {c.key for c in s.cookie_jar} & {"tg-at", "tg-rt"}


def with_params(query: str, **changes: str) -> str:
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(changes)
    return urlencode(params)


def assert_refused(resp: aiohttp.ClientResponse, body: bytes, status: int, code: str) -> None:
    assert resp.status == status
    assert json.loads(body)["error"] == code
    cookies = set_cookies(resp)
    assert not {"tg-at", "tg-rt"} & set(cookies)
    assert cookies[FLOW_COOKIE]["max-age"] == "0"  # the flow cookie is cleared


# -- the allow path ------------------------------------------------------------


async def test_login_walks_the_provider_and_lands_on_return_to(env: Env) -> None:
    async with browser() as s:
        location = await start_login(s, env)
        params = dict(parse_qsl(urlsplit(location).query))
        assert location.startswith(env.op.issuer + "/")
        assert params["redirect_uri"] == env.op.redirect_uri
        assert params["code_challenge_method"] == "S256"
        query = await authorize(env.op, location)
        r, _ = await callback(s, env, query)
        assert r.status == 303
        assert r.headers["Location"] == "/whoami/x?y=1"
        assert r.headers["Cache-Control"] == "no-store"
        assert session_cookies(s) == {"tg-at", "tg-rt"}
        assert FLOW_COOKIE not in {c.key for c in s.cookie_jar}
        async with s.get(f"{env.gw.url}/whoami/x?y=1") as r:
            assert r.status == 200
    token = env.backend[SEEN][-1]["Tokengate-Identity"]
    keys = {v.kid: v.public_key() for v in env.gw.keys.verifiers("upstream-signing")}
    _, claims = verify(token, keys=keys, algorithms=frozenset({"EdDSA"}), typ=IDENTITY_TYP)
    assert claims["sub"] == USER["sub"]
    assert '"session.create"' in env.audit_text()


async def test_flow_cookie_attributes(env: Env) -> None:
    async with browser() as s:
        async with s.get(
            f"{env.gw.url}{LOGIN_PATH}", headers=env.forwarded, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Cache-Control"] == "no-store"
            morsel = set_cookies(r)[FLOW_COOKIE]
    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["max-age"] == "600"
    assert not morsel["secure"]  # cookies.secure is false in this config (else __Host-tg-oidc)


async def test_flow_cookie_is_host_prefixed_and_secure_with_secure_cookies(
    tmp_path: Path,
    provider: Provider,  # noqa: F811 - the imported fixture
    backend_url: tuple[str, web.Application],
    start_gateway: GatewayFactory,
) -> None:
    env = await make_env(tmp_path, provider, backend_url, start_gateway, secure=True)
    async with browser() as s:
        async with s.get(
            f"{env.gw.url}{LOGIN_PATH}", headers=env.forwarded, allow_redirects=False
        ) as r:
            assert r.status == 303
            cookies = set_cookies(r)
    assert set(cookies) == {"__Host-tg-oidc"}
    assert cookies["__Host-tg-oidc"]["secure"]
    assert cookies["__Host-tg-oidc"]["path"] == "/"


@pytest.mark.parametrize(
    ("return_to", "landing"),
    [("/whoami/a?b=c", "/whoami/a?b=c"), ("//evil.example/x", "/"), ("https://evil.example", "/")],
)
async def test_return_to_is_a_same_origin_path(env: Env, return_to: str, landing: str) -> None:
    async with browser() as s:
        query = await authorize(env.op, await start_login(s, env, return_to))
        r, _ = await callback(s, env, query)
        assert r.status == 303
        assert r.headers["Location"] == landing


# -- deny twins ------------------------------------------------------------------


async def test_callback_without_the_flow_cookie_is_refused(env: Env) -> None:
    async with browser() as s:
        query = await authorize(env.op, await start_login(s, env))
    async with browser() as other:
        r, body = await callback(other, env, query)
        assert_refused(r, body, 401, "login_failed")
        assert not session_cookies(other)
        async with other.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 401
    assert '"session.login_failed"' in env.audit_text()
    assert '"flow_invalid"' in env.audit_text()


async def test_callback_with_a_tampered_state_is_refused(env: Env) -> None:
    async with browser() as s:
        query = await authorize(env.op, await start_login(s, env))
        r, body = await callback(s, env, with_params(query, state="A" * 43))
        assert_refused(r, body, 401, "login_failed")
        assert not session_cookies(s)
    assert '"state_mismatch"' in env.audit_text()


async def test_replayed_callback_url_is_refused(env: Env) -> None:
    async with browser() as s:
        query = await authorize(env.op, await start_login(s, env))
        cookie = flow_cookie(s)
        r, _ = await callback(s, env, query)
        assert r.status == 303
    async with browser() as attacker:
        r, body = await callback(attacker, env, query, cookie=cookie)
        assert_refused(r, body, 401, "login_failed")
        assert not session_cookies(attacker)


async def test_provider_error_text_is_not_echoed(env: Env) -> None:
    async with browser() as s:
        location = await start_login(s, env)
        state = dict(parse_qsl(urlsplit(location).query))["state"]
        evil = "<script>alert(1)</script> call +1-555-SCAM"
        query = urlencode(
            {
                "error": "access_denied",
                "error_description": evil,
                "state": state,
                "iss": env.op.issuer,
            }
        )
        r, body = await callback(s, env, query)
        assert_refused(r, body, 401, "login_failed")
        assert b"script" not in body
        assert b"SCAM" not in body
    assert '"provider_refused"' in env.audit_text()
    assert "SCAM" not in env.audit_text()


async def test_redirect_uri_ignores_forwarded_proto_from_untrusted_peers(
    tmp_path: Path,
    provider: Provider,  # noqa: F811 - the imported fixture
    backend_url: tuple[str, web.Application],
    start_gateway: GatewayFactory,
) -> None:
    env = await make_env(tmp_path, provider, backend_url, start_gateway, trusted=False)
    async with browser() as s:
        location = await start_login(s, env)
    redirect_uri = dict(parse_qsl(urlsplit(location).query))["redirect_uri"]
    assert redirect_uri == "http://" + urlsplit(provider.origin).netloc + REDIRECT_PATH


async def test_endpoints_are_404_without_oidc(
    tmp_path: Path,
    provider: Provider,  # noqa: F811 - the imported fixture
    backend_url: tuple[str, web.Application],
    start_gateway: GatewayFactory,
) -> None:
    env = await make_env(tmp_path, provider, backend_url, start_gateway, oidc=False)
    async with browser() as s:
        for path in (LOGIN_PATH, REDIRECT_PATH + "?code=x&state=y"):
            async with s.get(f"{env.gw.url}{path}", allow_redirects=False) as r:
                assert r.status == 404
                assert (await r.json())["error"] == "not_found"
                assert "Set-Cookie" not in r.headers


# -- the provider down: fail closed with 503 -------------------------------------


async def test_login_start_is_503_when_the_provider_is_unreachable(
    tmp_path: Path, backend_url: tuple[str, web.Application], start_gateway: GatewayFactory
) -> None:
    url, _ = backend_url
    gone = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path, url, ROUTES, sessions_yaml(gone))
    gw = await start_gateway(config)
    async with browser() as s:
        async with s.get(f"{gw.url}{LOGIN_PATH}", allow_redirects=False) as r:
            assert r.status == 503
            assert (await r.json())["error"] == "service_unavailable"
            assert "Set-Cookie" not in r.headers


async def test_callback_is_503_when_the_provider_goes_away(
    tmp_path: Path, backend_url: tuple[str, web.Application], start_gateway: GatewayFactory
) -> None:
    op = start_provider(tmp_path)
    try:
        env = await make_env(tmp_path, op, backend_url, start_gateway)
        async with browser() as s:
            query = await authorize(op, await start_login(s, env))
            op.stop()  # discovery is cached; the token endpoint is now unreachable
            r, body = await callback(s, env, query)
            assert_refused(r, body, 503, "service_unavailable")
            assert not session_cookies(s)
        assert '"provider_unavailable"' in env.audit_text()
    finally:
        op.stop()
