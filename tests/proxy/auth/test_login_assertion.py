"""Backend login assertions: HS256 / EdDSA / ES256 keys, nonce, jti single use, lifetime."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proxy.auth import jose
from proxy.auth.claims import MemoryReplayGuard
from proxy.auth.errors import AuthError
from proxy.auth.jose import HmacKey, LocalSigningKey, SigningKey, b64url_encode
from proxy.auth.login_assertion import LoginAssertion, LoginAssertionVerifier

NOW = 1_700_000_000.0
AUD = "tokengate"
NONCE = "n-0123456789abcdef"
SECRET = b"an app secret of at least 32 bytes!"
ED_PRIVATE = Ed25519PrivateKey.generate()
ES_PRIVATE = ec.generate_private_key(ec.SECP256R1())


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "aud": AUD,
        "sub": "alice",
        "iat": int(NOW),
        "exp": int(NOW) + 60,
        "jti": "jti-1",
        "nonce": NONCE,
        "roles": ["user", "billing"],
        "tenant": "acme",
        "amr": ["pwd"],
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _app_hs256(claims: Mapping[str, object], secret: bytes = SECRET, **header: object) -> str:
    """What an app writes with a few lines of its own (spaces in its JSON and all)."""
    head = {"alg": "HS256", "typ": "tokengate-login+jwt", **header}
    signing_input = ".".join(b64url_encode(json.dumps(part).encode()) for part in (head, claims))
    tag = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(tag)}"


def _verifier(
    key: object = None, *, clock: list[float] | None = None, **kw: object
) -> LoginAssertionVerifier:
    now = clock or [NOW]
    options: dict[str, object] = {
        "key": HmacKey(SECRET) if key is None else key,
        "audience": AUD,
        "replay": MemoryReplayGuard(now=lambda: now[0]),
    }
    options.update(kw)
    return LoginAssertionVerifier(**options)  # type: ignore[arg-type]


async def test_hs256_assertion_from_an_app() -> None:
    got = await _verifier().verify(_app_hs256(_claims()), nonce=NONCE, now=NOW + 1)
    assert got == LoginAssertion(
        sub="alice",
        roles=("user", "billing"),
        tenant="acme",
        amr=("pwd",),
        jti="jti-1",
        iat=int(NOW),
    )


@pytest.mark.parametrize(
    ("private", "maker"),
    [(ED_PRIVATE, LocalSigningKey.ed25519), (ES_PRIVATE, LocalSigningKey.es256)],
    ids=["EdDSA", "ES256"],
)
async def test_asymmetric_assertions(private: object, maker: object) -> None:
    assert callable(maker)
    signer: SigningKey = maker(private)
    public = private.public_key()  # type: ignore[attr-defined]
    token = jose.sign(_claims(), signer, typ="tokengate-login+jwt")
    assert (
        await _verifier(public, kid=signer.kid).verify(token, nonce=NONCE, now=NOW)
    ).sub == "alice"
    unsigned_kid = jose.encode_compact(
        {"alg": signer.algorithm, "typ": "tokengate-login+jwt"},
        jose.json_compact(_claims()),
        signer,
    )
    assert (await _verifier(public).verify(unsigned_kid, nonce=NONCE, now=NOW)).sub == "alice"


async def test_optional_claims_default_to_empty() -> None:
    token = _app_hs256(_claims(roles=None, tenant=None, amr=None))
    got = await _verifier().verify(token, nonce=NONCE, now=NOW)
    assert (got.roles, got.tenant, got.amr) == ((), None, ())


async def test_reused_jti_is_refused() -> None:
    verifier = _verifier()
    await verifier.verify(_app_hs256(_claims()), nonce=NONCE, now=NOW)
    with pytest.raises(AuthError) as info:
        await verifier.verify(_app_hs256(_claims()), nonce=NONCE, now=NOW + 1)
    assert info.value.reason == "login assertion jti reused"
    assert (
        await verifier.verify(_app_hs256(_claims(jti="jti-2")), nonce=NONCE, now=NOW)
    ).jti == "jti-2"


async def test_failed_assertions_do_not_consume_the_jti() -> None:
    verifier = _verifier()
    with pytest.raises(AuthError):
        await verifier.verify(_app_hs256(_claims()), nonce="another-nonce", now=NOW)
    assert (await verifier.verify(_app_hs256(_claims()), nonce=NONCE, now=NOW)).sub == "alice"


@pytest.mark.parametrize(
    ("claims", "nonce", "reason"),
    [
        (_claims(nonce="n-other"), NONCE, "nonce mismatch"),
        (_claims(), "n-other", "nonce mismatch"),
        (_claims(), "", "nonce mismatch"),
        (_claims(nonce=None), NONCE, "missing claim nonce"),
        (_claims(exp=int(NOW) + 61), NONCE, "longer than 60 s"),
        (_claims(iat=int(NOW) - 50, exp=int(NOW) - 1), NONCE, "expired"),
        (_claims(iat=int(NOW) - 60, exp=int(NOW)), NONCE, "expired"),
        (_claims(iat=int(NOW) + 31, exp=int(NOW) + 80), NONCE, "issued in the future"),
        (_claims(aud="someone-else"), NONCE, "wrong audience"),
        (_claims(aud=None), NONCE, "missing claim aud"),
        (_claims(exp=None), NONCE, "missing claim exp"),
        (_claims(iat=None), NONCE, "missing claim iat"),
        (_claims(jti=None), NONCE, "missing claim jti"),
        (_claims(sub=None), NONCE, "missing claim sub"),
        (_claims(roles="admin"), NONCE, "roles"),
        (_claims(amr=[1]), NONCE, "amr"),
    ],
)
async def test_bad_assertions_are_refused(
    claims: dict[str, object], nonce: str, reason: str
) -> None:
    with pytest.raises(AuthError) as info:
        await _verifier().verify(_app_hs256(claims), nonce=nonce, now=NOW)
    assert reason in info.value.reason


async def test_issuer_when_configured() -> None:
    verifier = _verifier(issuer="https://app.example")
    ok = _app_hs256(_claims(iss="https://app.example"))
    assert (await verifier.verify(ok, nonce=NONCE, now=NOW)).sub == "alice"
    with pytest.raises(AuthError):
        await verifier.verify(
            _app_hs256(_claims(iss="https://evil", jti="j2")), nonce=NONCE, now=NOW
        )


async def test_wrong_secret_wrong_typ_and_alg_none_are_refused() -> None:
    verifier = _verifier()
    for token in (
        _app_hs256(_claims(), secret=b"x" * 32),
        _app_hs256(_claims(), typ="JWT"),
        _app_hs256(_claims(), alg="none"),
        _app_hs256(_claims(), kid="../../etc/passwd"),
    ):
        with pytest.raises(AuthError):
            await verifier.verify(token, nonce=NONCE, now=NOW)


async def test_configured_typ() -> None:
    verifier = _verifier(typ="JWT")
    assert (await verifier.verify(_app_hs256(_claims(), typ="JWT"), nonce=NONCE, now=NOW)).sub
    with pytest.raises(AuthError):
        await verifier.verify(_app_hs256(_claims(jti="j2")), nonce=NONCE, now=NOW)


async def test_key_confusion_public_key_bytes_as_hs256_secret() -> None:
    """A config holding the app's Ed25519 public key never accepts HS256 under it."""
    public = ED_PRIVATE.public_key()
    raw = jose.b64url_decode(jose.public_jwk(public)["x"])
    forged = _app_hs256(_claims(), secret=raw)
    with pytest.raises(AuthError):
        await _verifier(public).verify(forged, nonce=NONCE, now=NOW)
    signer = LocalSigningKey.ed25519(ED_PRIVATE)
    genuine = jose.sign(_claims(), signer, typ="tokengate-login+jwt")
    verifier = _verifier(public, kid=signer.kid)
    assert (await verifier.verify(genuine, nonce=NONCE, now=NOW)).sub == "alice"
    with pytest.raises(AuthError):
        await verifier.verify(
            _app_hs256(_claims(jti="j2"), secret=raw, kid=signer.kid), nonce=NONCE, now=NOW
        )


async def test_hs256_secret_never_verifies_an_eddsa_declared_token() -> None:
    header = {"alg": "EdDSA", "typ": "tokengate-login+jwt"}
    signing_input = ".".join(b64url_encode(json.dumps(p).encode()) for p in (header, _claims()))
    tag = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(AuthError):
        await _verifier().verify(f"{signing_input}.{b64url_encode(tag * 2)}", nonce=NONCE, now=NOW)


async def test_configured_kid_must_match() -> None:
    verifier = _verifier(kid="app-1")
    assert await verifier.verify(_app_hs256(_claims(), kid="app-1"), nonce=NONCE, now=NOW)
    with pytest.raises(AuthError):
        await verifier.verify(_app_hs256(_claims(jti="j2"), kid="app-2"), nonce=NONCE, now=NOW)
    with pytest.raises(AuthError):
        await verifier.verify(_app_hs256(_claims(jti="j3")), nonce=NONCE, now=NOW)


def test_key_must_be_a_supported_kind() -> None:
    with pytest.raises(ValueError, match="key must be"):
        _verifier(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(ValueError, match="32 bytes"):
        HmacKey(b"short")
