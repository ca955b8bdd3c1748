"""The gateway and its keyring: zero root calls per request, sealed fails closed, public JWKS."""

from __future__ import annotations

import aiohttp

from proxy.handler import JWKS_PATH
from tests.proxy.conftest import Gateway


async def test_request_path_makes_no_root_backend_calls(gateway: Gateway) -> None:
    before = gateway.keys.root_calls
    assert before > 0  # unsealing went through the root
    async with aiohttp.ClientSession() as s:
        for _ in range(50):
            async with s.get(f"{gateway.url}/echo") as r:
                assert r.status == 200
        async with s.get(f"{gateway.url}{JWKS_PATH}") as r:
            assert r.status == 200
    assert gateway.keys.root_calls == before


async def test_sealed_gateway_fails_closed_until_unsealed(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        await gateway.keys.seal(actor="test")
        async with s.get(f"{gateway.url}/echo") as r:
            assert r.status == 503
            assert (await r.json())["error"] == "service_unavailable"
        async with s.get(f"{gateway.url}{JWKS_PATH}") as r:
            assert r.status == 503
        await gateway.keys.unseal(actor="test")
        async with s.get(f"{gateway.url}/echo") as r:
            assert r.status == 200


async def test_jwks_publishes_upstream_signing_keys_only(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{gateway.url}{JWKS_PATH}") as r:
        jwks = await r.json()
    published = {k["kid"] for k in jwks["keys"]}
    assert published == {k["kid"] for k in gateway.keys.jwks("upstream-signing")["keys"]}
    for secret_purpose in ("session-signing", "audit-checkpoint"):
        assert not published & {k["kid"] for k in gateway.keys.jwks(secret_purpose)["keys"]}
    assert all(set(k) <= {"kty", "crv", "x", "kid", "alg", "use"} for k in jwks["keys"])
