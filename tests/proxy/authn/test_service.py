"""SessionService through the gateway with ``sessions.access_algorithm: ES256``.

Start-up switches the session-signing key to P-256 (the old Ed25519 key stays
in the keyring, decrypt-only); tokens are ES256 with an RFC 7638 kid; a token
signed by the still-present Ed25519 key is refused (no algorithm confusion).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from proxy.auth import jose
from tests.conftest import free_port
from tests.proxy.conftest import GatewayFactory, write_config
from tests.proxy.session_backend import make_session_backend
from tests.proxy.test_sessions_http import ROUTES, Env, client, login, sessions_yaml


@pytest.fixture
async def es_env(tmp_path: Path, start_gateway: GatewayFactory) -> AsyncIterator[Env]:
    secret = secrets.token_urlsafe(32).encode()
    backend = make_session_backend(secret)
    runner = web.AppRunner(backend, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sessions = sessions_yaml(tmp_path, secret, "  access_algorithm: ES256")
    config = write_config(tmp_path, f"http://127.0.0.1:{port}", ROUTES, sessions)
    gw = await start_gateway(config)
    yield Env(gw, backend)
    await runner.cleanup()


def _parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, payload, _ = token.split(".")
    return (
        jose.json_object(jose.b64url_decode(header)),
        jose.json_object(jose.b64url_decode(payload)),
    )


async def test_es256_sessions_switch_the_key_and_pin_the_algorithm(es_env: Env) -> None:
    keys = es_env.gw.keys
    primary, *older = keys.verifiers("session-signing")
    assert (primary.algorithm, [s.algorithm for s in older]) == ("ES256", ["EdDSA"])
    assert primary.kid == jose.jwk_thumbprint(primary.public_jwk())
    async with client() as s:
        assert (await login(s, es_env)).status == 200
        access = next(c.value for c in s.cookie_jar if c.key == "tg-at")
        header, payload = _parts(access)
        assert header == {"alg": "ES256", "typ": "at+jwt", "kid": primary.kid}
        assert len(jose.b64url_decode(access.split(".")[2])) == 64  # raw r||s
        async with s.get(f"{es_env.gw.url}/whoami") as r:
            assert r.status == 200
    url = f"{es_env.gw.url}/whoami"
    # The same live claims signed by the old Ed25519 key, which the keyring still holds.
    confused = jose.sign(payload, older[0], typ="at+jwt")
    resigned = jose.sign(payload, primary, typ="at+jwt")
    async with client() as s:
        async with s.get(url, headers={"Authorization": f"Bearer {confused}"}) as r:
            assert r.status == 401
        async with s.get(url, headers={"Authorization": f"Bearer {resigned}"}) as r:
            assert r.status == 200  # the twin: the configured algorithm's key


async def test_default_config_stays_eddsa_and_refuses_es256_tokens(
    tmp_path: Path, start_gateway: GatewayFactory
) -> None:
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
    env = Env(gw, backend)
    try:
        assert [s.algorithm for s in gw.keys.verifiers("session-signing")] == ["EdDSA"]
        async with client() as s:
            assert (await login(s, env)).status == 200
            access = next(c.value for c in s.cookie_jar if c.key == "tg-at")
        header, payload = _parts(access)
        assert header["alg"] == "EdDSA"
        # An ES256 key the gateway would never hold, under the real kid: refused.
        foreign = jose.LocalSigningKey.es256(
            ec.generate_private_key(ec.SECP256R1()), kid=str(header["kid"])
        )
        forged = jose.sign(payload, foreign, typ="at+jwt")
        async with client() as s:
            async with s.get(
                f"{gw.url}/whoami", headers={"Authorization": f"Bearer {forged}"}
            ) as r:
                assert r.status == 401
            async with s.get(
                f"{gw.url}/whoami", headers={"Authorization": f"Bearer {access}"}
            ) as r:
                assert r.status == 200
    finally:
        await runner.cleanup()
