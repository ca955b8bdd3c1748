"""The built-in step-up page and the navigation redirects to it, through the in-process gateway.

Navigations without a session go to the login page; with a session that lacks
MFA they go to the MFA page, which is served with a strict CSP and no inline
code, and only ever sends the browser back to a same-origin path.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from aiohttp.test_utils import make_mocked_request

from proxy.authn.config import SessionsConfig
from proxy.authn.http import step_up_redirect
from proxy.authn.mfa_page import CSP, safe_return_to
from proxy.mfa.config import MfaConfig
from tests.proxy.authn.test_mfa_routes import enrol, env, post, totp_code
from tests.proxy.test_sessions_http import Env, client, login

__all__ = ["env"]  # the fixture, shared with the MFA route tests
PAGE = "/.tokengate/mfa/step-up"
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}


async def test_navigation_without_a_session_goes_to_the_login_page(env: Env) -> None:
    async with client() as s:
        async with s.get(
            f"{env.gw.url}/whoami/mfa?x=1", headers=NAVIGATE, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/login?return_to=%2Fwhoami%2Fmfa%3Fx%3D1"


async def test_navigation_lacking_mfa_goes_to_the_mfa_page_and_api_calls_get_401(
    env: Env,
) -> None:
    async with client() as s:
        await login(s, env)
        async with s.get(
            f"{env.gw.url}/whoami/mfa?x=1", headers=NAVIGATE, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == f"{PAGE}?return_to=%2Fwhoami%2Fmfa%3Fx%3D1"
            assert r.headers["Cache-Control"] == "no-store"
        async with s.get(f"{env.gw.url}/whoami/mfa", allow_redirects=False) as r:
            assert r.status == 401  # not a navigation: the RFC 9470 challenge
            assert "insufficient_user_authentication" in r.headers["WWW-Authenticate"]


async def test_page_is_served_with_a_strict_csp_and_no_inline_code(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        async with s.get(f"{env.gw.url}{PAGE}?return_to=%2Fwhoami%2Fmfa%3Fx%3D1") as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            assert r.headers["Content-Security-Policy"] == CSP
            assert "script-src 'self';" in CSP
            assert "unsafe-inline" not in CSP
            assert r.headers["Cache-Control"] == "no-store"
            assert r.headers["X-Frame-Options"] == "DENY"
            page = await r.text()
    assert 'data-return-to="/whoami/mfa?x=1"' in page
    assert re.findall(r"<script[^>]*>", page) == [
        '<script type="module" src="/.tokengate/mfa/step-up.js">'
    ]
    assert "style=" not in page
    assert "<style" not in page
    assert not re.search(r"<[^>]+\son[a-z]+=", page)  # no inline event handlers
    async with client() as s:
        for asset, kind in (("js", "text/javascript"), ("css", "text/css")):
            async with s.get(f"{env.gw.url}{PAGE}.{asset}") as r:
                assert (r.status, r.content_type) == (200, kind)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "evil.example",
        "",
        "/" + "a" * 3000,
    ],
)
async def test_foreign_return_to_becomes_the_root(env: Env, target: str) -> None:
    async with client() as s:
        await login(s, env)
        async with s.get(f"{env.gw.url}{PAGE}?return_to={quote(target, safe='')}") as r:
            assert r.status == 200
            assert 'data-return-to="/"' in await r.text()


@pytest.mark.parametrize("target", ["/", "/whoami/mfa", "/a/b?c=d&e=f#g", "/%2F%2Fx"])
def test_same_origin_paths_are_kept(target: str) -> None:
    assert safe_return_to(target) == target


async def test_quotes_in_return_to_are_escaped(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        async with s.get(f"{env.gw.url}{PAGE}?return_to={quote('/x?a="><b', safe='')}") as r:
            page = await r.text()
    assert 'data-return-to="/x?a=&quot;&gt;&lt;b"' in page


async def test_page_without_a_session_goes_to_login_keeping_a_safe_return_to(env: Env) -> None:
    async with client() as s:
        async with s.get(
            f"{env.gw.url}{PAGE}?return_to=%2Fwhoami%2Fmfa", allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/login?return_to=%2Fwhoami%2Fmfa"
        async with s.get(
            f"{env.gw.url}{PAGE}?return_to=https%3A%2F%2Fevil.example", allow_redirects=False
        ) as r:
            assert r.headers["Location"] == "/login?return_to=%2F"


async def test_after_the_page_passes_totp_the_navigation_goes_through(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        secret, _ = await enrol(s, env)
        async with s.get(f"{env.gw.url}/whoami/mfa", headers=NAVIGATE, allow_redirects=False) as r:
            assert r.status == 303
        status, _, _ = await post(s, env, "/totp/verify", {"code": totp_code(secret, 1)})
        assert status == 200
        async with s.get(f"{env.gw.url}/whoami/mfa", headers=NAVIGATE, allow_redirects=False) as r:
            assert r.status == 200


@pytest.mark.parametrize("page", ["https://evil.example/mfa", "//evil.example", "mfa", "/m?x=1"])
def test_configured_page_must_be_a_same_origin_path(page: str) -> None:
    with pytest.raises(ValueError, match="same-origin path"):
        MfaConfig(page=page)


def test_configured_page_twin_is_accepted() -> None:
    assert MfaConfig(page="/account/mfa").page == "/account/mfa"
    assert MfaConfig().page == PAGE


def test_configured_page_is_where_navigations_go() -> None:
    config = SessionsConfig.model_validate({"mfa": {"page": "/account/mfa"}})
    resp = step_up_redirect(make_mocked_request("GET", "/r?a=b"), config)
    assert resp.headers["Location"] == "/account/mfa?return_to=%2Fr%3Fa%3Db"
