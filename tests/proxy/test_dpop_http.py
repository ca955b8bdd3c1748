"""DPoP-bound sessions through the gateway: binding at login, proofs on every non-navigation."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proxy.auth import jose
from proxy.auth.jose import LocalSigningKey
from tests.proxy.test_sessions_http import Env, client, env

__all__ = ["env"]


def proof(key: LocalSigningKey, method: str, url: str, **extra: object) -> str:
    public = key.verification_key
    assert not isinstance(public, jose.HmacKey)
    header = {"typ": "dpop+jwt", "alg": key.algorithm, "jwk": jose.public_jwk(public)}
    claims = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time()),
        **extra,
    }
    return jose.encode_compact(header, json.dumps(claims).encode(), key)


async def bound_login(s: aiohttp.ClientSession, env: Env, key: LocalSigningKey) -> None:
    url = f"{env.gw.url}/login"
    headers = {"Origin": env.gw.url, "DPoP": proof(key, "POST", url)}
    async with s.post(url, json={"user": "alice"}, headers=headers) as r:
        assert r.status == 200


async def test_bound_session_needs_a_proof_by_its_key(env: Env) -> None:
    key = LocalSigningKey.ed25519(Ed25519PrivateKey.generate())
    other = LocalSigningKey.ed25519(Ed25519PrivateKey.generate())
    url = f"{env.gw.url}/whoami"
    async with client() as s:
        await bound_login(s, env, key)
        async with s.get(url) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "invalid_dpop_proof"
            assert r.headers["WWW-Authenticate"].startswith("DPoP")
        good = proof(key, "GET", url)
        async with s.get(url, headers={"DPoP": good}) as r:
            assert r.status == 200
        async with s.get(url, headers={"DPoP": good}) as r:
            assert r.status == 401  # replayed jti
        async with s.get(url, headers={"DPoP": proof(other, "GET", url)}) as r:
            assert r.status == 401  # another key than the session's
        async with s.get(url, headers={"DPoP": proof(key, "POST", url)}) as r:
            assert r.status == 401  # wrong htm
        async with s.get(url, headers={"DPoP": proof(key, "GET", f"{env.gw.url}/other")}) as r:
            assert r.status == 401  # wrong htu
        async with s.get(url, headers={"Sec-Fetch-Mode": "navigate"}) as r:
            assert r.status == 200  # a safe top-level navigation needs no proof
        async with s.post(url, headers={"Sec-Fetch-Mode": "navigate", "Origin": env.gw.url}) as r:
            assert r.status == 401  # but an unsafe one does


async def test_unbound_session_needs_no_proof(env: Env) -> None:
    async with client() as s:
        async with s.post(
            f"{env.gw.url}/login", json={"user": "alice"}, headers={"Origin": env.gw.url}
        ) as r:
            assert r.status == 200
        async with s.get(f"{env.gw.url}/whoami") as r:
            assert r.status == 200


async def test_login_with_a_bad_proof_is_refused(env: Env) -> None:
    key = LocalSigningKey.ed25519(Ed25519PrivateKey.generate())
    async with client() as s:
        headers = {"Origin": env.gw.url, "DPoP": proof(key, "POST", f"{env.gw.url}/elsewhere")}
        async with s.post(f"{env.gw.url}/login", json={"user": "alice"}, headers=headers) as r:
            assert r.status == 401
        assert not [c for c in s.cookie_jar if c.key == "tg-at"]


async def test_the_browser_helper_is_served(env: Env) -> None:
    async with client() as s, s.get(f"{env.gw.url}/.tokengate/dpop.js") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/javascript")
        text = await r.text()
    assert (
        text.encode() == (Path(__file__).parents[2] / "proxy" / "static" / "dpop.js").read_bytes()
    )


async def test_mfa_endpoints_need_the_bound_key_too(env: Env) -> None:
    """A stolen cookie of a DPoP-bound session cannot enrol or step up a second factor."""
    key = LocalSigningKey.ed25519(Ed25519PrivateKey.generate())
    url = f"{env.gw.url}/.tokengate/mfa/totp/enrol"
    headers = {"Origin": env.gw.url}
    async with client() as s:
        await bound_login(s, env, key)
        async with s.post(url, json={}, headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "invalid_dpop_proof"
        async with s.post(url, json={}, headers={**headers, "DPoP": proof(key, "POST", url)}) as r:
            assert r.status == 200
            assert (await r.json())["uri"].startswith("otpauth://totp/")
