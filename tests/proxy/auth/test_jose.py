"""Compact JWS: known answers, strict encodings, header rules, and the attack suite."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_client.signing import KeySigner
from proxy.auth import jose
from proxy.auth.errors import AuthError
from proxy.auth.jose import (
    EDDSA,
    ES256,
    HS256,
    HmacKey,
    JwsError,
    LocalSigningKey,
    b64url_decode,
    b64url_encode,
)

ED_PRIVATE = Ed25519PrivateKey.generate()
ES_PRIVATE = ec.generate_private_key(ec.SECP256R1())
ED_PUB = ED_PRIVATE.public_key()
ES_PUB = ES_PRIVATE.public_key()
ED = LocalSigningKey.ed25519(ED_PRIVATE)
ES = LocalSigningKey.es256(ES_PRIVATE)
SECRET = HmacKey(b"s" * 32)
HS = LocalSigningKey.hs256(SECRET, "shared")
KEYS: dict[str, jose.PublicKey] = {
    ED.kid: ED.verification_key,
    ES.kid: ES.verification_key,
    "shared": SECRET,
}
ALL = frozenset({EDDSA, ES256, HS256})
PAYLOAD = {"sub": "alice", "n": 1}

# RFC 8037 appendix A.1-A.4: the Ed25519 key, its thumbprint and the JWS.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_JWS = (
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)
# RFC 7638 section 3.1.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def _verify(token: str, **kw: object) -> tuple[dict[str, object], dict[str, object]]:
    options: dict[str, object] = {"keys": KEYS, "algorithms": ALL, "typ": "test+jwt"}
    options.update(kw)
    return jose.verify(token, **options)  # type: ignore[arg-type]


def _forge(header: Mapping[str, object], payload: bytes, signature: bytes) -> str:
    return ".".join(
        b64url_encode(part)
        for part in (json.dumps(header, separators=(",", ":")).encode(), payload, signature)
    )


def _hs(header: dict[str, object], payload: dict[str, object], secret: bytes) -> str:
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(json.dumps(payload).encode())}"
    tag = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(tag)}"


# -- known answers -----------------------------------------------------------


def test_rfc8037_ed25519_jws_and_thumbprint() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    key = LocalSigningKey.ed25519(private)
    assert jose.public_jwk(private.public_key()) == {"crv": "Ed25519", "kty": "OKP", "x": RFC8037_X}
    assert key.kid == RFC8037_THUMBPRINT
    assert jose.encode_compact({"alg": "EdDSA"}, b"Example of Ed25519 signing", key) == RFC8037_JWS


def test_rfc8037_jws_has_no_typ_and_a_text_payload_so_verify_refuses_it() -> None:
    public = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D)).public_key()
    with pytest.raises(JwsError):
        jose.verify(
            RFC8037_JWS,
            keys={"k": public},
            algorithms=frozenset({EDDSA}),
            typ="JWT",
            require_kid=False,
        )


def test_rfc7638_thumbprint_ignores_optional_members() -> None:
    assert jose.jwk_thumbprint(RFC7638_JWK) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_needs_the_required_members() -> None:
    with pytest.raises(JwsError):
        jose.jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})


def test_kid_of_a_keyring_signer_is_the_same_thumbprint() -> None:
    signer = KeySigner.from_seed("session-signing", 1, bytes(range(32)))
    assert jose.thumbprint_of(signer.public_key()) == signer.kid
    token = jose.sign(PAYLOAD, signer, typ="at+jwt")
    _, claims = jose.verify(
        token, keys={signer.kid: signer.public_key()}, algorithms=frozenset({EDDSA}), typ="at+jwt"
    )
    assert claims == PAYLOAD


# -- strict encodings --------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", bytes(range(256))])
def test_b64url_round_trip(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


@pytest.mark.parametrize(
    "text",
    ["Zg==", "Zg=", "Zh", "Z", "Zm9v+", "Zm9v/", "Zm 9v", "Zm9v\n", "Zm9\u00e9"],
    ids=[
        "padded",
        "half-padded",
        "non-canonical-bits",
        "length-1",
        "plus",
        "slash",
        "space",
        "newline",
        "non-ascii",
    ],
)
def test_b64url_refuses_non_canonical(text: str) -> None:
    with pytest.raises(JwsError):
        b64url_decode(text)


def test_json_object_allows_distinct_members() -> None:
    assert jose.json_object(b'{"a":1,"b":2}') == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"x":{"a":1,"a":1}}',
        b"[1]",
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b"\xff",
        b"{",
    ],
)
def test_json_object_refuses(data: bytes) -> None:
    with pytest.raises(JwsError):
        jose.json_object(data)


# -- sign / verify round trips ------------------------------------------------


@pytest.mark.parametrize("key", [ED, ES, HS], ids=["EdDSA", "ES256", "HS256"])
def test_round_trip(key: LocalSigningKey) -> None:
    token = jose.sign(PAYLOAD, key, typ="test+jwt")
    header, claims = _verify(token)
    assert header == {"alg": key.algorithm, "typ": "test+jwt", "kid": key.kid}
    assert claims == PAYLOAD


def test_es256_signature_is_raw_r_and_s() -> None:
    token = jose.sign(PAYLOAD, ES, typ="test+jwt")
    assert len(b64url_decode(token.split(".")[2])) == 64


@pytest.mark.parametrize("typ", ["test+jwt", "TEST+JWT", "application/test+jwt"])
def test_typ_is_case_insensitive_with_optional_application_prefix(typ: str) -> None:
    token = jose.sign(PAYLOAD, ED, typ=typ)
    assert _verify(token)[1] == PAYLOAD


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "test+jwt2", ""])
def test_wrong_typ_is_refused(typ: str) -> None:
    token = jose.sign(PAYLOAD, ED, typ=typ)
    with pytest.raises(JwsError):
        _verify(token)


def test_missing_typ_is_refused() -> None:
    token = jose.encode_compact({"alg": EDDSA, "kid": ED.kid}, b'{"a":1}', ED)
    with pytest.raises(JwsError):
        _verify(token)


def test_extra_header_is_signed_and_returned() -> None:
    token = jose.sign(PAYLOAD, ED, typ="test+jwt", extra_header={"cty": "x"})
    assert _verify(token)[0]["cty"] == "x"


@pytest.mark.parametrize("name", ["alg", "kid", "jku", "crit"])
def test_extra_header_cannot_override_or_add_refused_members(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be set"):
        jose.sign(PAYLOAD, ED, typ="t", extra_header={name: "x"})


def test_jws_error_is_an_auth_error_with_a_log_reason() -> None:
    with pytest.raises(AuthError) as info:
        _verify("a.b")
    assert info.value.status == 401
    assert str(info.value) == "jose: invalid token"
    assert info.value.reason == "compact: not three parts"


# -- the attack suite: each deny next to its allow twin -----------------------


def test_alg_none_is_refused_even_if_unsigned() -> None:
    good = jose.sign(PAYLOAD, ED, typ="test+jwt")
    assert _verify(good)[1] == PAYLOAD
    header = {"alg": "none", "typ": "test+jwt", "kid": ED.kid}
    for token in (
        _forge(header, json.dumps(PAYLOAD).encode(), b""),
        _forge(header, json.dumps(PAYLOAD).encode(), b"\x00" * 64),
    ):
        with pytest.raises(JwsError):
            _verify(token)
    with pytest.raises(ValueError, match="subset"):
        _verify(good, algorithms=frozenset({"none"}))


def test_alg_missing_is_refused() -> None:
    good = jose.sign(PAYLOAD, ED, typ="test+jwt")
    assert _verify(good)
    signing_input = f"{b64url_encode(json.dumps({'typ': 'test+jwt', 'kid': ED.kid}).encode())}.{b64url_encode(b'{}')}"
    token = f"{signing_input}.{b64url_encode(ED.sign(signing_input.encode()))}"
    with pytest.raises(JwsError, match="invalid token") as info:
        _verify(token)
    assert "alg" in info.value.reason


def test_alg_outside_the_callers_pinned_set_is_refused() -> None:
    token = jose.sign(PAYLOAD, ES, typ="test+jwt")
    assert _verify(token, algorithms=frozenset({ES256}))
    with pytest.raises(JwsError):
        _verify(token, algorithms=frozenset({EDDSA}))


@pytest.mark.parametrize(
    "secret",
    [
        lambda: ED_PUB.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        lambda: ED_PUB.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        lambda: json.dumps(jose.public_jwk(ED_PUB)).encode(),
    ],
    ids=["raw", "pem", "jwk"],
)
def test_key_confusion_hs256_with_the_public_key_as_secret(secret: object) -> None:
    """HS256 signed with the Ed25519 public key's bytes never verifies against that key."""
    assert callable(secret)
    forged = _hs({"alg": "HS256", "typ": "test+jwt", "kid": ED.kid}, PAYLOAD, secret())
    with pytest.raises(JwsError):
        _verify(forged)  # even with HS256 in the allowed set
    with pytest.raises(JwsError):
        _verify(forged, algorithms=frozenset({EDDSA}))
    # the twin: a genuine HS256 token under the configured secret verifies
    genuine = _hs({"alg": "HS256", "typ": "test+jwt", "kid": "shared"}, PAYLOAD, SECRET.secret)
    assert _verify(genuine)[1] == PAYLOAD


def test_key_confusion_eddsa_header_with_an_hmac_secret() -> None:
    """An EdDSA-declared token pointing at the HS256 secret's kid fails; HS256 twin passes."""
    token = jose.sign(PAYLOAD, HS, typ="test+jwt")
    assert _verify(token)[1] == PAYLOAD
    header = {"alg": "EdDSA", "typ": "test+jwt", "kid": "shared"}
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(b'{}')}"
    for signature in (
        hmac.new(SECRET.secret, signing_input.encode(), hashlib.sha256).digest() * 2,
        ED.sign(signing_input.encode()),
    ):
        with pytest.raises(JwsError):
            _verify(f"{signing_input}.{b64url_encode(signature)}")


def test_es256_token_never_verifies_with_an_ed25519_key_under_its_kid() -> None:
    header = {"alg": "ES256", "typ": "test+jwt", "kid": ED.kid}
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(b'{}')}"
    with pytest.raises(JwsError):
        _verify(f"{signing_input}.{b64url_encode(ES.sign(signing_input.encode()))}")


@pytest.mark.parametrize(
    "kid",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "https://evil.example/jwks.json",
        "file:///dev/null",
        "unknown-kid",
        "",
        "a" * 129,
        "kid with space",
        "kid\x00",
        17,
        None,
    ],
)
def test_kid_injection_and_unknown_kids_are_refused(kid: object) -> None:
    keys = {"../../etc/passwd": ED.verification_key, "unknown-kid-x": ED.verification_key}
    header = {"alg": "EdDSA", "typ": "test+jwt", "kid": kid}
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(b'{}')}"
    token = f"{signing_input}.{b64url_encode(ED.sign(signing_input.encode()))}"
    with pytest.raises(JwsError):
        _verify(token, keys=keys)


def test_plain_kid_twin_verifies() -> None:
    header = {"alg": "EdDSA", "typ": "test+jwt", "kid": "key-2024.01_a~b"}
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(b'{}')}"
    token = f"{signing_input}.{b64url_encode(ED.sign(signing_input.encode()))}"
    assert _verify(token, keys={"key-2024.01_a~b": ED.verification_key})[1] == {}


def test_missing_kid_uses_the_single_key_only_when_allowed() -> None:
    token = jose.encode_compact({"alg": EDDSA, "typ": "test+jwt"}, b"{}", ED)
    assert _verify(token, keys={"only": ED.verification_key}, require_kid=False)[1] == {}
    with pytest.raises(JwsError):
        _verify(token, keys={"only": ED.verification_key})
    with pytest.raises(JwsError):
        _verify(token, keys={"a": ED.verification_key, "b": ES.verification_key}, require_kid=False)


@pytest.mark.parametrize(
    "member",
    [
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/cert"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
        {"b64": False},
        {
            "jwk": {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            }
        },
    ],
    ids=lambda m: next(iter(m)),
)
def test_dangerous_header_members_are_refused(member: dict[str, object]) -> None:
    header = {"alg": "EdDSA", "typ": "test+jwt", "kid": ED.kid, **member}
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(b'{}')}"
    token = f"{signing_input}.{b64url_encode(ED.sign(signing_input.encode()))}"
    with pytest.raises(JwsError):
        _verify(token)


def test_embedded_jwk_verifies_only_when_allowed_and_then_is_required() -> None:
    header = {"alg": "EdDSA", "typ": "test+jwt", "jwk": jose.public_jwk(ED_PUB)}
    good = jose.encode_compact(header, b"{}", ED)
    assert _verify(good, keys={}, allow_embedded_jwk=True)[1] == {}
    with pytest.raises(JwsError):
        _verify(good)
    plain = jose.sign(PAYLOAD, ED, typ="test+jwt")
    with pytest.raises(JwsError):
        _verify(plain, allow_embedded_jwk=True)
    other = jose.encode_compact(
        header, b"{}", LocalSigningKey.ed25519(Ed25519PrivateKey.generate())
    )
    with pytest.raises(JwsError):
        _verify(other, keys={}, allow_embedded_jwk=True)


def test_tampered_payload_is_refused() -> None:
    token = jose.sign(PAYLOAD, ED, typ="test+jwt")
    header, _, signature = token.split(".")
    forged = f"{header}.{b64url_encode(json.dumps({'sub': 'admin', 'n': 1}).encode())}.{signature}"
    assert _verify(token)[1]["sub"] == "alice"
    with pytest.raises(JwsError):
        _verify(forged)


def test_tampered_header_is_refused() -> None:
    token = jose.sign(PAYLOAD, ED, typ="test+jwt")
    _, payload, signature = token.split(".")
    header = b64url_encode(
        json.dumps({"alg": "EdDSA", "typ": "test+jwt", "kid": ED.kid, "cty": "x"}).encode()
    )
    with pytest.raises(JwsError):
        _verify(f"{header}.{payload}.{signature}")


@pytest.mark.parametrize("make", [LocalSigningKey.ed25519, None], ids=["ed25519", "p256"])
def test_token_signed_by_another_key_under_a_known_kid_is_refused(make: object) -> None:
    if make is None:
        other = LocalSigningKey.es256(ec.generate_private_key(ec.SECP256R1()), kid=ES.kid)
    else:
        other = LocalSigningKey.ed25519(Ed25519PrivateKey.generate(), kid=ED.kid)
    with pytest.raises(JwsError):
        _verify(jose.sign(PAYLOAD, other, typ="test+jwt"))


def test_duplicate_json_keys_in_a_signed_payload_are_refused() -> None:
    token = jose.encode_compact(
        {"alg": EDDSA, "typ": "test+jwt", "kid": ED.kid}, b'{"sub":"alice","sub":"admin"}', ED
    )
    twin = jose.encode_compact(
        {"alg": EDDSA, "typ": "test+jwt", "kid": ED.kid}, b'{"sub":"alice"}', ED
    )
    assert _verify(twin)[1] == {"sub": "alice"}
    with pytest.raises(JwsError):
        _verify(token)


def test_duplicate_json_keys_in_a_signed_header_are_refused() -> None:
    raw = f'{{"alg":"EdDSA","typ":"test+jwt","kid":"{ED.kid}","alg":"HS256"}}'.encode()
    signing_input = f"{b64url_encode(raw)}.{b64url_encode(b'{}')}"
    with pytest.raises(JwsError):
        _verify(f"{signing_input}.{b64url_encode(ED.sign(signing_input.encode()))}")


def test_non_canonical_base64_signature_is_refused() -> None:
    token = jose.sign(PAYLOAD, ED, typ="test+jwt")
    signing_input, signature = token.rsplit(".", 1)
    raw = b64url_decode(signature)
    # 64 bytes leave 4 spare bits in the last character: set one of them.
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(signature[-1])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = signature[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(twin + "==") == raw  # same bytes, second spelling
    assert _verify(token)
    for forged in (f"{signing_input}.{twin}", f"{signing_input}.{signature}=="):
        with pytest.raises(JwsError):
            _verify(forged)


@pytest.mark.parametrize(
    "token", ["", "a", "a.b", "a.b.c.d", "..", "e30.e30.", "W10.e30." + "A" * 86, "x" * 20000]
)
def test_malformed_compact_tokens_are_refused(token: str) -> None:
    with pytest.raises(JwsError):
        _verify(token)


def test_short_hmac_secret_is_refused_at_construction() -> None:
    assert HmacKey(b"k" * 32)
    with pytest.raises(ValueError, match="32 bytes"):
        HmacKey(b"k" * 31)
    assert "kkk" not in repr(HmacKey(b"k" * 32))


def test_jwk_parsing_refuses_private_members_and_bad_points() -> None:
    public = jose.public_jwk(ES_PUB)
    assert jose.public_key_from_jwk(public).public_numbers() == ES_PUB.public_numbers()  # type: ignore[union-attr]
    for bad in (
        {**public, "d": "AAAA"},
        {**public, "y": public["x"]},
        {**public, "crv": "P-384"},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "x": RFC8037_X},
        ["not", "an", "object"],
    ):
        with pytest.raises(JwsError):
            jose.public_key_from_jwk(bad)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_flipped_bit_fails(data: st.DataObject) -> None:
    key = data.draw(st.sampled_from([ED, ES, HS]))
    token = jose.sign(PAYLOAD, key, typ="test+jwt")
    raw = bytearray(token.encode("ascii"))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(0, 7))
    flipped = raw.decode("latin-1")
    with pytest.raises(JwsError):
        _verify(flipped)
