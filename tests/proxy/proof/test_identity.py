"""Tokengate-Identity tokens: claims, audience binding, lifetime, per-session reuse."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kms_client.rng import random_bytes
from kms_client.signing import KeySigner
from proxy.auth import jose
from proxy.auth.claims import check_registered
from proxy.auth.errors import AuthError
from proxy.auth.jose import EDDSA, LocalSigningKey, SigningKey
from proxy.proof.identity import TYP, Identity, IdentityMinter

NOW = 1_700_000_000.0
ALICE = Identity(
    sub="alice",
    sid="s1",
    roles=("user",),
    tenant="acme",
    amr=("pwd", "otp", "mfa"),
    acr="urn:tokengate:acr:mfa",
    auth_time=int(NOW) - 100,
)
PRIVATE = Ed25519PrivateKey.generate()
KEY = LocalSigningKey.ed25519(PRIVATE)


def _minter(key: SigningKey = KEY, **kw: object) -> IdentityMinter:
    options: dict[str, object] = {
        "signer": lambda: key,
        "issuer": "https://gw.example",
        "random_bytes": random_bytes,
    }
    options.update(kw)
    return IdentityMinter(**options)  # type: ignore[arg-type]


def _read(token: str, audience: str = "orders", now: float = NOW) -> dict[str, object]:
    _, claims = jose.verify(
        token, keys={KEY.kid: PRIVATE.public_key()}, algorithms=frozenset({EDDSA}), typ=TYP
    )
    check_registered(
        claims,
        now=now,
        audience=audience,
        issuer="https://gw.example",
        leeway=0,
        required=("exp", "iat", "jti"),
    )
    return claims


def test_claims_and_header() -> None:
    token = _minter().token(ALICE, audience="orders", now=NOW)
    header = jose.json_object(jose.b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "typ": "tokengate-identity+jwt", "kid": KEY.kid}
    claims = _read(token)
    assert {k: v for k, v in claims.items() if k != "jti"} == {
        "iss": "https://gw.example",
        "aud": "orders",
        "sub": "alice",
        "sid": "s1",
        "roles": ["user"],
        "tenant": "acme",
        "amr": ["pwd", "otp", "mfa"],
        "acr": "urn:tokengate:acr:mfa",
        "auth_time": int(NOW) - 100,
        "iat": int(NOW),
        "exp": int(NOW) + 60,
    }
    assert isinstance(claims["jti"], str)


def test_token_for_one_upstream_is_refused_at_another() -> None:
    token = _minter().token(ALICE, audience="orders", now=NOW)
    assert _read(token, audience="orders")
    with pytest.raises(AuthError):
        _read(token, audience="billing")


def test_expires_within_a_minute() -> None:
    token = _minter().token(ALICE, audience="orders", now=NOW)
    assert _read(token, now=NOW + 59)
    with pytest.raises(AuthError):
        _read(token, now=NOW + 60)


def test_reused_until_shortly_before_exp() -> None:
    minter = _minter(refresh_margin=10)
    first = minter.token(ALICE, audience="orders", now=NOW)
    assert minter.token(ALICE, audience="orders", now=NOW + 49) == first
    renewed = minter.token(ALICE, audience="orders", now=NOW + 50)
    assert renewed != first
    assert _read(renewed, now=NOW + 100)


@pytest.mark.parametrize(
    "other",
    [
        Identity(**{**ALICE.__dict__, "sid": "s2"}),
        Identity(**{**ALICE.__dict__, "roles": ("user", "admin")}),
        Identity(**{**ALICE.__dict__, "amr": ("pwd",)}),
        Identity(**{**ALICE.__dict__, "tenant": None}),
    ],
    ids=["sid", "roles", "amr", "tenant"],
)
def test_any_change_of_facts_mints_a_new_token(other: Identity) -> None:
    minter = _minter()
    first = minter.token(ALICE, audience="orders", now=NOW)
    assert minter.token(ALICE, audience="orders", now=NOW + 1) == first
    assert minter.token(other, audience="orders", now=NOW + 1) != first
    assert minter.token(ALICE, audience="billing", now=NOW + 1) != first


def test_rotation_mints_under_the_new_key() -> None:
    current: list[SigningKey] = [KEY]
    minter = IdentityMinter(
        signer=lambda: current[0], issuer="https://gw.example", random_bytes=random_bytes
    )
    first = minter.token(ALICE, audience="orders", now=NOW)
    current[0] = KeySigner.from_seed("upstream-signing", 2, random_bytes(32))
    rotated = minter.token(ALICE, audience="orders", now=NOW + 1)
    assert rotated != first
    header = jose.json_object(jose.b64url_decode(rotated.split(".")[0]))
    assert header["kid"] == current[0].kid


def test_forget_drops_a_sessions_tokens_only() -> None:
    minter = _minter()
    bob = Identity(**{**ALICE.__dict__, "sub": "bob", "sid": "s9"})
    alice_token = minter.token(ALICE, audience="orders", now=NOW)
    bob_token = minter.token(bob, audience="orders", now=NOW)
    minter.forget("s1")
    assert minter.token(ALICE, audience="orders", now=NOW + 1) != alice_token
    assert minter.token(bob, audience="orders", now=NOW + 1) == bob_token


def test_cache_is_bounded() -> None:
    minter = _minter(cache_size=1)
    first = minter.token(ALICE, audience="orders", now=NOW)
    minter.token(ALICE, audience="billing", now=NOW)
    assert minter.token(ALICE, audience="orders", now=NOW + 1) != first


@pytest.mark.parametrize(("lifetime", "margin"), [(0, 0), (61, 10), (30, 30), (60, -1)])
def test_bounds(lifetime: int, margin: int) -> None:
    with pytest.raises(ValueError, match="identity"):
        _minter(lifetime=lifetime, refresh_margin=margin)
