"""The app's compact JWS: strict base64url, HS256 signing, pinned EdDSA verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from demo_backend.jws import (
    JwsError,
    b64url_decode,
    b64url_encode,
    parse_eddsa,
    sign_hs256,
    verify_eddsa,
)
from hypothesis import given
from hypothesis import strategies as st

from proxy.auth import jose
from proxy.auth.jose import HmacKey, LocalSigningKey

TYP = "tokengate-identity+jwt"
PRIVATE = Ed25519PrivateKey.generate()
KEY = LocalSigningKey.ed25519(PRIVATE)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _token(header: object, payload: object = None, key: Ed25519PrivateKey = PRIVATE) -> str:
    """A compact JWS with exactly this header (no policy), signed with ``key``."""
    payload = {"sub": "alice"} if payload is None else payload
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{_b64(key.sign(signing_input.encode()))}"


@given(st.binary(max_size=200))
def test_b64url_round_trip(raw: bytes) -> None:
    text = b64url_encode(raw)
    assert "=" not in text
    assert b64url_decode(text) == raw


@pytest.mark.parametrize("text", ["a", "ab=", "a+b/", "ab cd", "ab\n", "é"])
def test_b64url_is_strict(text: str) -> None:
    with pytest.raises(JwsError):
        b64url_decode(text)


def test_hs256_known_answer() -> None:
    secret = b"k" * 32
    token = sign_hs256({"sub": "alice", "n": 1}, secret, typ="demo+jwt")
    header, payload, signature = token.split(".")
    assert header == _b64(b'{"alg":"HS256","typ":"demo+jwt"}')
    assert payload == _b64(b'{"sub":"alice","n":1}')
    expected = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert signature == _b64(expected)


def test_hs256_verifies_with_the_gateway_jose() -> None:
    secret = b"s" * 40
    token = sign_hs256({"sub": "alice"}, secret, typ="demo+jwt")
    _, payload = jose.verify(
        token,
        keys={"": HmacKey(secret)},
        algorithms=frozenset({jose.HS256}),
        typ="demo+jwt",
        require_kid=False,
    )
    assert payload == {"sub": "alice"}


def test_eddsa_token_from_the_gateway_verifies() -> None:
    token = jose.sign({"sub": "alice"}, KEY, typ=TYP)
    jws = parse_eddsa(token, typ=TYP)
    assert jws.kid == KEY.kid
    assert verify_eddsa(jws, PRIVATE.public_key()) == {"sub": "alice"}


def test_eddsa_token_by_another_key_fails() -> None:
    jws = parse_eddsa(jose.sign({"sub": "alice"}, KEY, typ=TYP), typ=TYP)
    with pytest.raises(JwsError):
        verify_eddsa(jws, Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": TYP, "kid": "k"},
        {"alg": "HS256", "typ": TYP, "kid": "k"},
        {"alg": "ES256", "typ": TYP, "kid": "k"},
        {"alg": "EdDSA", "typ": "at+jwt", "kid": "k"},
        {"alg": "EdDSA", "kid": "k"},
        {"alg": "EdDSA", "typ": TYP},
        {"alg": "EdDSA", "typ": TYP, "kid": ""},
        {"alg": "EdDSA", "typ": TYP, "kid": 7},
        {"alg": "EdDSA", "typ": TYP, "kid": "k" * 129},
        {"alg": "EdDSA", "typ": TYP, "kid": "k", "jku": "https://evil.example/jwks"},
        {"alg": "EdDSA", "typ": TYP, "kid": "k", "x5u": "https://evil.example/cert"},
        {"alg": "EdDSA", "typ": TYP, "kid": "k", "jwk": {"kty": "OKP"}},
        {"alg": "EdDSA", "typ": TYP, "kid": "k", "crit": ["exp"]},
        ["EdDSA"],
    ],
)
def test_header_policy(header: object) -> None:
    with pytest.raises(JwsError):
        parse_eddsa(_token(header), typ=TYP)


def test_header_policy_allow_twin() -> None:
    jws = parse_eddsa(_token({"alg": "EdDSA", "typ": TYP, "kid": "k"}), typ=TYP)
    assert verify_eddsa(jws, PRIVATE.public_key()) == {"sub": "alice"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "e30.e30.",
        _token({"alg": "EdDSA", "typ": TYP, "kid": "k"}, payload=["not", "an", "object"]),
        "x" * 9000,
    ],
)
def test_malformed_tokens_fail(token: str) -> None:
    with pytest.raises(JwsError):
        verify_eddsa(parse_eddsa(token, typ=TYP), PRIVATE.public_key())


def test_repeated_json_member_fails() -> None:
    header = _b64(b'{"alg":"EdDSA","typ":"' + TYP.encode() + b'","kid":"k","kid":"k2"}')
    payload = _b64(b'{"sub":"alice"}')
    signature = _b64(PRIVATE.sign(f"{header}.{payload}".encode()))
    with pytest.raises(JwsError):
        parse_eddsa(f"{header}.{payload}.{signature}", typ=TYP)
    payload = _b64(b'{"sub":"alice","sub":"mallory"}')
    signature = _b64(PRIVATE.sign(f"{_b64(b'{}')}.{payload}".encode()))
    good_header = _b64(json.dumps({"alg": "EdDSA", "typ": TYP, "kid": "k"}).encode())
    with pytest.raises(JwsError):
        parse_eddsa(f"{good_header}.{payload}.{signature}", typ=TYP)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_fails(position: int, bit: int) -> None:
    token = jose.sign({"sub": "alice", "roles": ["user"]}, KEY, typ=TYP)
    header, payload, signature = token.split(".")
    parts = [header, payload, signature]
    index = position % 3
    raw = bytearray(b64url_decode(parts[index]))
    raw[(position // 3) % len(raw)] ^= 1 << bit
    parts[index] = b64url_encode(bytes(raw))
    with pytest.raises(JwsError):
        verify_eddsa(parse_eddsa(".".join(parts), typ=TYP), PRIVATE.public_key())
