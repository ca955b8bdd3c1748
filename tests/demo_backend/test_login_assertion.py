"""The app's ``Tokengate-Login`` assertion, checked by the gateway's own verifier."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from demo_backend.app import TokengateOptions
from demo_backend.jws import b64url_decode, b64url_encode
from demo_backend.login_assertion import (
    LOGIN_HEADER,
    LOGIN_NONCE_HEADER,
    LOGOUT_HEADER,
    LoginAsserter,
    load_login_secret,
    login_nonce,
)
from demo_backend.sessions import SecretFileError
from multidict import CIMultiDict

from proxy.auth.claims import MemoryReplayGuard
from proxy.auth.errors import AuthError
from proxy.auth.jose import HmacKey
from proxy.auth.login_assertion import LoginAssertion, LoginAssertionVerifier
from proxy.authn.config import LoginAssertionSettings
from proxy.authn.setup import login_verifier
from tests.demo_backend.support import START, Client, MakeClient

# Random, but never ending in a newline (the file reader would take that off).
SECRET = secrets.token_bytes(31) + b"!"
NONCE = "bm9uY2UtZnJvbS10aGUtZ2F0ZXdheQ"


def _verifier(secret: bytes = SECRET, audience: str = "tokengate") -> LoginAssertionVerifier:
    return LoginAssertionVerifier(
        key=HmacKey(secret), audience=audience, replay=MemoryReplayGuard(now=lambda: START)
    )


def _mint(secret: bytes = SECRET, audience: str = "tokengate", now: float = START) -> str:
    asserter = LoginAsserter(secret, audience=audience)
    return asserter.assertion(username="carol", roles=("support",), nonce=NONCE, now=now)


def _secret_file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "login.secret"
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


async def test_assertion_passes_the_gateway_verifier() -> None:
    got = await _verifier().verify(_mint(), nonce=NONCE, now=START + 1)
    assert got.sub == "carol"
    assert got.roles == ("support",)
    assert got.tenant == "demo"
    assert got.amr == ("pwd",)
    assert got.iat == int(START)


def test_assertion_header_and_claims_are_exact() -> None:
    header, payload, _ = _mint().split(".")
    assert json.loads(b64url_decode(header)) == {"alg": "HS256", "typ": "tokengate-login+jwt"}
    claims = json.loads(b64url_decode(payload))
    jti = claims.pop("jti")
    assert len(b64url_decode(jti)) == 16
    assert claims == {
        "iss": "demo-app",
        "aud": "tokengate",
        "iat": int(START),
        "exp": int(START) + 30,
        "nonce": NONCE,
        "sub": "carol",
        "roles": ["support"],
        "tenant": "demo",
        "amr": ["pwd"],
    }
    assert json.loads(b64url_decode(_mint().split(".")[1]))["jti"] != jti


@pytest.mark.parametrize(
    ("change", "nonce", "now"),
    [
        ("none", "another-nonce", START + 1),
        ("none", "", START + 1),
        ("none", NONCE, START + 30),
        ("none", NONCE, START + 3600),
        ("header", NONCE, START + 1),
        ("payload", NONCE, START + 1),
        ("signature", NONCE, START + 1),
    ],
    ids=["wrong-nonce", "no-nonce", "expired", "long-expired", "header", "payload", "signature"],
)
async def test_wrong_nonce_expired_or_tampered_assertion_fails(
    change: str, nonce: str, now: float
) -> None:
    token = _mint()
    if change != "none":
        parts = token.split(".")
        index = ["header", "payload", "signature"].index(change)
        # Re-encode with one byte flipped, so the part stays valid base64url.
        raw = bytearray(b64url_decode(parts[index]))
        raw[len(raw) // 2] ^= 0x01
        parts[index] = b64url_encode(bytes(raw))
        token = ".".join(parts)
    with pytest.raises(AuthError):
        await _verifier().verify(token, nonce=nonce, now=now)
    # Its allow twin: the untouched token, the right nonce, in time.
    assert await _verifier().verify(_mint(), nonce=NONCE, now=START + 29)


@pytest.mark.parametrize(
    ("secret", "audience"),
    [(secrets.token_bytes(32), "tokengate"), (SECRET, "other-gateway")],
    ids=["other-secret", "other-audience"],
)
async def test_assertion_for_another_gateway_fails(secret: bytes, audience: str) -> None:
    with pytest.raises(AuthError):
        await _verifier(secret, audience).verify(_mint(), nonce=NONCE, now=START + 1)


async def test_audience_is_configurable() -> None:
    token = _mint(audience="gw.example")
    got = await _verifier(audience="gw.example").verify(token, nonce=NONCE, now=START + 1)
    assert got.sub == "carol"


async def test_replayed_assertion_fails_at_the_gateway() -> None:
    verifier, token = _verifier(), _mint()
    assert isinstance(await verifier.verify(token, nonce=NONCE, now=START + 1), LoginAssertion)
    with pytest.raises(AuthError):
        await verifier.verify(token, nonce=NONCE, now=START + 2)


@pytest.mark.parametrize(
    "content",
    [
        secrets.token_bytes(31) + b"\x00",
        secrets.token_bytes(63) + b"\xff",
        b64url_encode(secrets.token_bytes(32)).encode() + b"\n",
        b"  " + secrets.token_urlsafe(48).encode() + b"\r\n",
        secrets.token_bytes(40) + b" \n",
        b"\n" + secrets.token_bytes(40),
    ],
    ids=[
        "raw-32",
        "raw-64",
        "b64url-newline",
        "b64url-spaces-crlf",
        "raw-space-nl",
        "raw-nl-first",
    ],
)
async def test_secret_file_is_read_as_the_gateway_reads_it(tmp_path: Path, content: bytes) -> None:
    path = _secret_file(tmp_path, content)
    gateway = login_verifier(
        LoginAssertionSettings(route="login", secret_file=path),
        base=tmp_path,
        replay=MemoryReplayGuard(now=lambda: START),
    )
    token = _mint(secret=load_login_secret(path))
    assert (await gateway.verify(token, nonce=NONCE, now=START + 1)).sub == "carol"


def test_secret_file_through_a_symlink_is_read(tmp_path: Path) -> None:
    # Kubernetes mounts secrets as symlinks into a ..data directory.
    target = _secret_file(tmp_path, SECRET)
    link = tmp_path / "mounted"
    link.symlink_to(target)
    assert load_login_secret(link) == SECRET


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secret_file(tmp_path, SECRET, mode)
    with pytest.raises(SecretFileError, match="must not be readable by group or others"):
        load_login_secret(path)


@pytest.mark.parametrize(
    "content", [b"", b"k" * 31, b"k" * 31 + b"\n", b"k" * 31 + b"\r\n", b"k" * 30 + b"\n\n"]
)
def test_short_secret_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(SecretFileError, match="at least 32 bytes"):
        load_login_secret(_secret_file(tmp_path, content))


def test_huge_secret_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="too large"):
        load_login_secret(_secret_file(tmp_path, b"k" * 5000))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([NONCE], NONCE),
        (["a"], "a"),
        (["x" * 256], "x" * 256),
        ([], None),
        (["x" * 257], None),
        ([""], None),
        (["with space"], None),
        (["caf\u00e9"], None),
        ([NONCE, NONCE], None),
    ],
)
def test_login_nonce(values: list[str], expected: str | None) -> None:
    assert login_nonce(values) == expected


@pytest.mark.parametrize("size", [0, 16, 31])
def test_asserter_refuses_a_short_secret(size: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        LoginAsserter(b"k" * size, audience="tokengate")


def test_asserter_repr_hides_the_secret() -> None:
    assert SECRET.hex() not in repr(LoginAsserter(SECRET, audience="tokengate"))


# -- through the app -----------------------------------------------------------


@pytest.fixture
async def asserting(make_client: MakeClient, tmp_path: Path) -> Client:
    path = _secret_file(tmp_path, SECRET)
    return await make_client(tokengate=TokengateOptions(login_secret_file=path))


async def test_login_with_nonce_answers_an_assertion(asserting: Client) -> None:
    resp = await asserting.post(
        "/login",
        json={"username": "alice", "password": "alice"},
        headers={LOGIN_NONCE_HEADER: NONCE},
    )
    assert resp.status == 200
    got = await _verifier().verify(resp.headers[LOGIN_HEADER], nonce=NONCE, now=START + 1)
    assert (got.sub, got.roles) == ("alice", ("user",))


@pytest.mark.parametrize(
    ("nonces", "password", "status"),
    [((), "alice", 200), ((NONCE, NONCE), "alice", 200), ((NONCE,), "wrong", 401)],
    ids=["no-nonce", "two-nonces", "failed-login"],
)
async def test_no_assertion_without_one_nonce_or_on_failure(
    asserting: Client, nonces: tuple[str, ...], password: str, status: int
) -> None:
    headers = CIMultiDict((LOGIN_NONCE_HEADER, n) for n in nonces)
    resp = await asserting.post(
        "/login", json={"username": "alice", "password": password}, headers=headers
    )
    assert resp.status == status
    assert LOGIN_HEADER not in resp.headers


async def test_no_assertion_without_a_secret(client: Client) -> None:
    resp = await client.post(
        "/login",
        json={"username": "alice", "password": "alice"},
        headers={LOGIN_NONCE_HEADER: NONCE},
    )
    assert resp.status == 200
    assert LOGIN_HEADER not in resp.headers


async def test_logout_tells_tokengate(asserting: Client, client: Client) -> None:
    resp = await asserting.post("/logout")
    assert resp.status == 204
    assert resp.headers[LOGOUT_HEADER] == "1"
    # Its twin: the app without a login secret behaves as before.
    resp = await client.post("/logout")
    assert resp.status == 204
    assert LOGOUT_HEADER not in resp.headers


async def test_app_with_an_open_secret_file_does_not_start(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = _secret_file(tmp_path, SECRET, 0o644)
    with pytest.raises(SecretFileError):
        await make_client(tokengate=TokengateOptions(login_secret_file=path))
