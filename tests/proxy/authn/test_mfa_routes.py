"""MFA over HTTP through a real in-process gateway: enrol, verify, step up, refuse.

The gateway runs on real sockets with a login-asserting backend, the SQLite
session store and the SQLite MFA store under the test's data dir, the real
keyring and the real audit log. TOTP codes are computed here from the secret
in the otpauth URI; WebAuthn uses the software authenticator of the MFA tests.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from audit.entry import parse_entry
from proxy.auth.totp import TotpParams, hotp, time_step
from tests.conftest import free_port
from tests.proxy.conftest import GatewayFactory, write_config
from tests.proxy.mfa.soft_authenticator import SoftAuthenticator
from tests.proxy.session_backend import make_session_backend
from tests.proxy.test_sessions_http import Env, client, login, sessions_yaml

ROUTES = """
routes:
  - name: login
    match: {methods: [POST], path: /login}
    allow_unauthenticated: true
  - name: step-up
    match: {path: /whoami/mfa}
    auth: {mfa: true}
  - name: me
    match: {prefix: /whoami}
    auth: {}
"""
MFA = "/.tokengate/mfa"
WEBAUTHN_PORT = 8443  # the browser origin the software authenticator claims (rp id localhost)
ORIGIN = f"http://localhost:{WEBAUTHN_PORT}"


@pytest.fixture
async def env(tmp_path: Path, start_gateway: GatewayFactory) -> AsyncIterator[Env]:
    secret = secrets.token_hex(32).encode()  # random bytes could end in a stripped newline
    backend = make_session_backend(secret)
    runner = web.AppRunner(backend, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    mfa = f"""  mfa:
    max_failures: 3
    webauthn: {{rp_id: localhost, origins: ["{ORIGIN}"]}}
"""
    extra = sessions_yaml(tmp_path, secret) + mfa
    config = write_config(tmp_path, f"http://127.0.0.1:{port}", ROUTES, extra)
    gw = await start_gateway(config)
    yield Env(gw, backend)
    await runner.cleanup()


# ---- helpers ----


def totp_code(secret: bytes, offset: int = 0) -> str:
    step = time_step(datetime.now(UTC), period=30)
    return hotp(secret, step + offset, params=TotpParams())


def secret_of(uri: str) -> bytes:
    assert uri.startswith("otpauth://totp/")
    (value,) = parse_qs(urlsplit(uri).query)["secret"]
    return base64.b32decode(value + "=" * (-len(value) % 8))


def cookie(s: aiohttp.ClientSession, name: str) -> str:
    return next(c.value for c in s.cookie_jar if c.key == name)


def sid_of(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])


async def post(
    s: aiohttp.ClientSession, env: Env, path: str, body: object = None, **headers: str
) -> tuple[int, dict[str, object], aiohttp.ClientResponse]:
    hdrs = {"Origin": env.gw.url, **headers}
    async with s.post(f"{env.gw.url}{MFA}{path}", json=body, headers=hdrs) as r:
        data = await r.json()
        return r.status, data, r


async def status_of(s: aiohttp.ClientSession, env: Env, path: str) -> int:
    async with s.get(f"{env.gw.url}{path}") as r:
        await r.read()
        return r.status


async def enrol(s: aiohttp.ClientSession, env: Env) -> tuple[bytes, list[str]]:
    """Begin and confirm TOTP with the current step's code: (secret, recovery codes)."""
    status, body, _ = await post(s, env, "/totp/enrol")
    assert status == 200, body
    assert "<svg" in str(body["qr_svg"])
    secret = secret_of(str(body["uri"]))
    status, body, _ = await post(s, env, "/totp/confirm", {"code": totp_code(secret)})
    assert (status, body["status"]) == (200, "enrolled"), body
    codes = body["recovery_codes"]
    assert isinstance(codes, list)
    assert len(codes) == 10
    return secret, [str(c) for c in codes]


def audit_events(env: Env, prefix: str = "mfa.") -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for path in (env.gw.config.parent / "data" / "audit").glob("*.jsonl"):
        for line in path.read_bytes().splitlines(keepends=True):
            entry = parse_entry(line)
            if entry.event.startswith(prefix):
                out.append((entry.event, dict(entry.fields)))
    return out


def audit_bytes(env: Env) -> bytes:
    return b"".join(p.read_bytes() for p in (env.gw.config.parent / "data" / "audit").iterdir())


# ---- TOTP ----


async def test_totp_enrol_confirm_verify_steps_up_with_a_new_session(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        async with s.get(f"{env.gw.url}/whoami/mfa") as r:
            assert r.status == 401
            assert "insufficient_user_authentication" in r.headers["WWW-Authenticate"]
        secret, codes = await enrol(s, env)
        old = cookie(s, "tg-at")
        assert await status_of(s, env, "/whoami/mfa") == 401  # enrolling is not passing
        code = totp_code(secret, 1)  # the confirming step is spent; the next one is in the window
        status, body, r = await post(s, env, "/totp/verify", {"code": code})
        assert (status, body["status"]) == (200, "passed")
        assert r.headers["Cache-Control"] == "no-store"
        new = cookie(s, "tg-at")
        assert sid_of(new) != sid_of(old)
        assert await status_of(s, env, "/whoami/mfa") == 200
    async with aiohttp.ClientSession() as s2:
        async with s2.get(f"{env.gw.url}/whoami", headers={"Authorization": f"Bearer {old}"}) as r:
            assert r.status == 401  # the pre-step-up session is revoked
        async with s2.get(f"{env.gw.url}/whoami", headers={"Authorization": f"Bearer {new}"}) as r:
            assert r.status == 200
    names = [(e, f.get("outcome")) for e, f in audit_events(env)]
    assert names == [
        ("mfa.step_up_demanded", None),  # /whoami/mfa before the second factor
        ("mfa.enrol", "begun"),
        ("mfa.enrol", "enrolled"),
        ("mfa.step_up_demanded", None),  # enrolled is not passed
        ("mfa.pass", None),
    ]
    logged = audit_bytes(env)
    for sensitive in (code, base64.b32encode(secret).decode().rstrip("="), *codes):
        assert sensitive.encode() not in logged


async def test_wrong_code_is_refused_with_a_fixed_message(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        secret, _ = await enrol(s, env)
        right = totp_code(secret, 1)
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        status, body, _ = await post(s, env, "/totp/verify", {"code": wrong})
        assert (status, body["error"]) == (401, "mfa_failed")
        assert body["message"] == "the second factor was not accepted"
        assert await status_of(s, env, "/whoami/mfa") == 401
    ((_event, fields),) = [e for e in audit_events(env) if e[0] == "mfa.fail"]
    assert (fields["outcome"], fields["reason"], fields["failures"]) == ("failed", "bad_code", 1)


async def test_replayed_code_is_refused(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        secret, _ = await enrol(s, env)
        code = totp_code(secret, 1)
        assert (await post(s, env, "/totp/verify", {"code": code}))[0] == 200
        status, body, _ = await post(s, env, "/totp/verify", {"code": code})
        assert (status, body["error"]) == (401, "mfa_failed")
    fails = [f for e, f in audit_events(env) if e == "mfa.fail"]
    assert [f["outcome"] for f in fails] == ["replayed"]


async def test_lockout_refuses_even_the_right_code(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        secret, _ = await enrol(s, env)
        right = totp_code(secret, 1)
        wrong = f"{(int(right) + 7) % 1_000_000:06d}"
        statuses = [(await post(s, env, "/totp/verify", {"code": wrong}))[0] for _ in range(3)]
        assert statuses == [401, 401, 429]
        status, body, r = await post(s, env, "/totp/verify", {"code": right})
        assert (status, body["error"]) == (429, "mfa_locked")
        assert 0 < int(r.headers["Retry-After"]) <= 900
        assert await status_of(s, env, "/whoami/mfa") == 401
    locks = [f for e, f in audit_events(env) if e == "mfa.lockout"]
    assert len(locks) == 2
    assert all(f["method"] == "otp" for f in locks)


async def test_recovery_code_steps_up_once(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        _, codes = await enrol(s, env)
        status, body, _ = await post(s, env, "/recovery/verify", {"code": codes[0]})
        assert (status, body["status"], body["recovery_codes_left"]) == (200, "passed", 9)
        assert await status_of(s, env, "/whoami/mfa") == 200
        status, body, _ = await post(s, env, "/recovery/verify", {"code": codes[0]})
        assert (status, body["error"]) == (401, "mfa_failed")
    methods = [f["method"] for e, f in audit_events(env) if e == "mfa.pass"]
    assert methods == ["recovery"]


# ---- session, CSRF, bodies ----


async def test_no_session_is_401(env: Env) -> None:
    async with client() as s:
        for path in ("/totp/enrol", "/totp/verify", "/webauthn/authenticate/options"):
            status, body, r = await post(s, env, path, {"code": "123456"})
            assert (status, body["error"]) == (401, "unauthorized")
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert audit_events(env) == []


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [({}, False), ({"Origin": "https://evil.example"}, False), ({"Origin": "SELF"}, True)],
)
async def test_csrf_on_cookie_sessions(env: Env, headers: dict[str, str], allowed: bool) -> None:
    headers = {k: (env.gw.url if v == "SELF" else v) for k, v in headers.items()}
    async with client() as s:
        await login(s, env)
        async with s.post(f"{env.gw.url}{MFA}/totp/enrol", headers=headers) as r:
            assert (r.status == 200) is allowed
            if not allowed:
                assert (await r.json())["error"] == "csrf_refused"


async def test_bearer_caller_needs_no_origin_and_gets_its_new_token(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        secret, _ = await enrol(s, env)
        token = cookie(s, "tg-at")
    async with aiohttp.ClientSession() as s2:
        auth = {"Authorization": f"Bearer {token}"}
        async with s2.post(
            f"{env.gw.url}{MFA}/totp/verify", json={"code": totp_code(secret, 1)}, headers=auth
        ) as r:
            assert r.status == 200
            body = await r.json()
        assert sid_of(body["access_token"]) != sid_of(token)
        stepped = {"Authorization": f"Bearer {body['access_token']}"}
        async with s2.get(f"{env.gw.url}/whoami/mfa", headers=stepped) as r:
            assert r.status == 200


async def test_bodies_are_bounded_json_objects(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        url, origin = f"{env.gw.url}{MFA}/totp/verify", {"Origin": env.gw.url}
        cases = [
            ({"data": b"code=1", "headers": {**origin, "Content-Type": "text/plain"}}, 415),
            ({"data": b"x" * (16 * 1024 + 1), "headers": origin}, 413),
            ({"data": b"{nope", "headers": {**origin, "Content-Type": "application/json"}}, 400),
            ({"json": ["123456"], "headers": origin}, 400),
            ({"json": {"code": 123456}, "headers": origin}, 400),
            ({"json": {"code": "1" * 65}, "headers": origin}, 400),
        ]
        for kwargs, expected in cases:
            async with s.post(url, **kwargs) as r:  # type: ignore[arg-type]
                assert r.status == expected, kwargs
                assert "error" in await r.json()


# ---- WebAuthn ----


async def register(s: aiohttp.ClientSession, env: Env, auth: SoftAuthenticator) -> int:
    status, options, _ = await post(s, env, "/webauthn/register/options")
    if status != 200:
        return status
    credential = json.loads(auth.create(json.dumps(options)))
    status, _body, _ = await post(s, env, "/webauthn/register/verify", {"credential": credential})
    return status


async def test_webauthn_register_then_authenticate_steps_up(env: Env) -> None:
    auth = SoftAuthenticator(ORIGIN)
    async with client() as s:
        await login(s, env)
        assert await register(s, env, auth) == 200
        old = cookie(s, "tg-at")
        status, options, _ = await post(s, env, "/webauthn/authenticate/options")
        assert status == 200
        assertion = json.loads(auth.get(json.dumps(options)))
        status, body, _ = await post(
            s, env, "/webauthn/authenticate/verify", {"credential": assertion}
        )
        assert (status, body["status"]) == (200, "passed")
        assert sid_of(cookie(s, "tg-at")) != sid_of(old)
        assert await status_of(s, env, "/whoami/mfa") == 200
    (passed,) = [f for e, f in audit_events(env) if e == "mfa.pass"]
    assert (passed["method"], passed["amr"]) == ("hwk", ["hwk", "mfa"])


async def test_webauthn_assertion_from_another_origin_is_refused(env: Env) -> None:
    auth = SoftAuthenticator(ORIGIN)
    async with client() as s:
        await login(s, env)
        assert await register(s, env, auth) == 200
        _, options, _ = await post(s, env, "/webauthn/authenticate/options")
        forged = json.loads(auth.get(json.dumps(options), origin="https://evil.localhost"))
        status, body, _ = await post(
            s, env, "/webauthn/authenticate/verify", {"credential": forged}
        )
        assert (status, body["error"]) == (401, "mfa_failed")
        assert await status_of(s, env, "/whoami/mfa") == 401


async def test_another_factor_needs_a_session_that_passed_mfa(env: Env) -> None:
    async with client() as s:
        await login(s, env)
        secret, _ = await enrol(s, env)
    async with client() as s:  # the same user, a password-only session (a stolen one, say)
        await login(s, env)
        assert await register(s, env, SoftAuthenticator(ORIGIN)) == 401
        status, body, _ = await post(s, env, "/totp/enrol")
        assert (status, body["error"]) == (401, "insufficient_user_authentication")
        assert (await post(s, env, "/totp/verify", {"code": totp_code(secret, 1)}))[0] == 200
        assert await register(s, env, SoftAuthenticator(ORIGIN)) == 200
