"""ID-token verification: known-good tokens for each algorithm, and the attack suite."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proxy.auth.jose import b64url_encode, json_compact
from proxy.oidc import IdTokenError
from proxy.oidc.id_token import (
    IdTokenExpectations,
    allowed_algorithms,
    check_at_hash,
    verify_id_token,
)
from proxy.oidc.jwks import ProviderKey, VerificationKey, select_key
from tests.proxy.oidc.conftest import Rp
from tests.proxy.oidc.provider import CLIENT_ID, CLIENT_SECRET

ISSUER = "https://op.example"
NOW = 1_700_000_000.0
NONCE = "n-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = Ed25519PrivateKey.generate()
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign_rs256(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _sign_ps256(data: bytes) -> bytes:
    return RSA_KEY.sign(
        data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    )


def _sign_es256(data: bytes) -> bytes:
    r, s = decode_dss_signature(EC_KEY.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


SIGNERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "RS256": ("rsa1", _sign_rs256(RSA_KEY)),
    "PS256": ("rsa1", _sign_ps256),
    "ES256": ("ec1", _sign_es256),
    "EdDSA": ("ed1", ED_KEY.sign),
    "Ed25519": ("ed1", ED_KEY.sign),
}


@dataclass
class StaticKeys:
    """A fixed provider key set behind the same selection rules as the JWKS cache."""

    keys: tuple[ProviderKey, ...]

    async def key(self, kid: str | None, alg: str) -> VerificationKey:
        found = select_key(self.keys, kid, alg)
        if found is None:
            raise IdTokenError("jwks: no key for kid and alg")
        return found


KEYS = StaticKeys(
    (
        ProviderKey("rsa1", "RSA", None, RSA_KEY.public_key()),
        ProviderKey("ec1", "EC", "ES256", EC_KEY.public_key()),
        ProviderKey("ed1", "OKP", None, ED_KEY.public_key()),
    )
)
EXPECT = IdTokenExpectations(
    issuer=ISSUER,
    client_id="client-1",
    nonce=NONCE,
    algorithms=frozenset({"RS256", "PS256", "ES256", "EdDSA", "Ed25519"}),
    now=NOW,
    leeway=30,
)


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "client-1",
        "exp": int(NOW) + 300,
        "iat": int(NOW) - 10,
        "nonce": NONCE,
        "auth_time": int(NOW) - 20,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(
    alg: str = "RS256",
    payload: dict[str, object] | None = None,
    *,
    header: dict[str, object] | None = None,
    signer: Callable[[bytes], bytes] | None = None,
) -> str:
    kid, default_signer = SIGNERS.get(alg, ("rsa1", _sign_rs256(RSA_KEY)))
    head: dict[str, object] = {"alg": alg, "kid": kid, "typ": "JWT"}
    head.update(header or {})
    head = {k: v for k, v in head.items() if v is not None}
    body = payload if payload is not None else claims()
    signing_input = f"{b64url_encode(json_compact(head))}.{b64url_encode(json_compact(body))}"
    signature = (signer or default_signer)(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


async def verify(tok: str, expect: IdTokenExpectations = EXPECT, **kw: object) -> dict[str, object]:
    return await verify_id_token(tok, keys=KEYS, expect=expect, **kw)  # type: ignore[arg-type]


# -- allow --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"])
async def test_each_algorithm_verifies(alg: str) -> None:
    assert (await verify(token(alg)))["sub"] == "user-1"


async def test_no_typ_and_no_kid_with_a_single_fitting_key() -> None:
    tok = token("ES256", header={"typ": None, "kid": None})
    assert (await verify(tok))["sub"] == "user-1"


@pytest.mark.parametrize(
    ("aud", "azp", "trusted"),
    [
        ("client-1", None, frozenset()),
        (["client-1"], None, frozenset()),
        ("client-1", "client-1", frozenset()),
        (["client-1", "api"], "client-1", frozenset({"api"})),
    ],
)
async def test_audiences_accepted(aud: object, azp: str | None, trusted: frozenset[str]) -> None:
    expect = replace(EXPECT, trusted_audiences=trusted)
    await verify(token(payload=claims(aud=aud, azp=azp)), expect)


# -- algorithm and key attacks --------------------------------------------------------


async def test_alg_none_refused() -> None:
    tok = token(header={"alg": "none"}, signer=lambda _: b"")
    with pytest.raises(IdTokenError, match="id token") as info:
        await verify(tok)
    assert info.value.reason == "header: alg missing or not allowed"


async def test_alg_none_refused_even_if_caller_asks() -> None:
    with pytest.raises(ValueError, match="subset"):
        await verify(token(), replace(EXPECT, algorithms=frozenset({"none"})))


@pytest.mark.parametrize(
    "secret",
    [
        CLIENT_SECRET.encode(),
        RSA_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        RSA_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1),
    ],
)
async def test_hs256_refused_key_confusion(secret: bytes) -> None:
    tok = token(
        header={"alg": "HS256"},
        signer=lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    with pytest.raises(IdTokenError):
        await verify(tok)
    with pytest.raises(ValueError, match="subset"):
        await verify(tok, replace(EXPECT, algorithms=frozenset({"HS256"})))


async def test_algorithm_outside_the_pinned_set_refused() -> None:
    with pytest.raises(IdTokenError):
        await verify(token("ES256"), replace(EXPECT, algorithms=frozenset({"RS256"})))


async def test_rs256_header_over_pss_signature_refused() -> None:
    with pytest.raises(IdTokenError):
        await verify(token("RS256", signer=_sign_ps256))


async def test_alg_of_the_wrong_key_type_refused() -> None:
    # ES256 header naming the RSA key: no key fits (kid, alg), so nothing is tried.
    tok = token("ES256", header={"kid": "rsa1"})
    with pytest.raises(IdTokenError):
        await verify(tok)


async def test_jwk_alg_binding_is_honoured() -> None:
    keys = StaticKeys((ProviderKey("rsa1", "RSA", "RS256", RSA_KEY.public_key()),))
    await verify_id_token(token("RS256"), keys=keys, expect=EXPECT)
    with pytest.raises(IdTokenError):
        await verify_id_token(token("PS256"), keys=keys, expect=EXPECT)


async def test_signed_by_another_key_under_a_known_kid_refused() -> None:
    with pytest.raises(IdTokenError) as info:
        await verify(token("RS256", signer=_sign_rs256(OTHER_RSA)))
    assert info.value.reason == "signature: mismatch"


async def test_unknown_kid_refused() -> None:
    with pytest.raises(IdTokenError) as info:
        await verify(token("RS256", header={"kid": "rotated-away"}))
    assert info.value.reason == "jwks: no key for kid and alg"


@pytest.mark.parametrize(
    "kid", ["../../etc/passwd", "https://evil.example/k", "a b", "x" * 200, 7, ["rsa1"]]
)
async def test_kid_injection_refused(kid: object) -> None:
    """A kid is only ever a lookup key: odd ones are refused, none is used as a path or URL."""
    with pytest.raises(IdTokenError) as info:
        await verify(token(header={"kid": kid}))
    assert info.value.reason in (
        "header: kid is not a plain key id",
        "jwks: no key for kid and alg",
    )


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "https://evil.example/jwks"),
        ("x5u", "https://evil.example/cert"),
        ("x5c", ["MIIB"]),
        ("jwk", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ("crit", ["exp"]),
        ("b64", False),
        ("enc", "A256GCM"),
    ],
)
async def test_refused_header_members(member: str, value: object) -> None:
    with pytest.raises(IdTokenError) as info:
        await verify(token(header={member: value}))
    assert info.value.reason == "header: refused member"


@pytest.mark.parametrize("typ", ["at+jwt", "logout+jwt", "application/at+jwt", "JOSE", 1])
async def test_other_token_types_refused(typ: object) -> None:
    with pytest.raises(IdTokenError) as info:
        await verify(token(header={"typ": typ}))
    assert info.value.reason == "header: typ is not JWT"


async def test_weak_rsa_key_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    keys = StaticKeys((ProviderKey("rsa1", "RSA", None, weak.public_key()),))
    with pytest.raises(IdTokenError):
        await verify_id_token(token(signer=_sign_rs256(weak)), keys=keys, expect=EXPECT)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "x",  # signature one char longer
        lambda t: t.rsplit(".", 1)[0] + ".",  # empty signature
        lambda t: t.rsplit(".", 1)[0],  # two parts
        lambda t: t + ".AAAA.AAAA",  # five parts: JWE
        lambda t: "A" + t,  # header changed
        lambda t: t.replace(".", "=.", 1),  # padding
        lambda t: t + "A" * 20000,  # too long
    ],
)
async def test_malformed_tokens_refused(mangle: Callable[[str], str]) -> None:
    with pytest.raises(IdTokenError):
        await verify(mangle(token()))


async def test_tampered_payload_refused() -> None:
    head, _, sig = token().split(".")
    body = b64url_encode(json_compact(claims(sub="admin")))
    with pytest.raises(IdTokenError) as info:
        await verify(f"{head}.{body}.{sig}")
    assert info.value.reason == "signature: mismatch"


# -- claims -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://op.example/"}, "claims: wrong issuer"),
        ({"iss": None}, "claims: missing claim iss"),
        ({"aud": "client-2"}, "claims: wrong audience"),
        ({"aud": ["client-2", "client-3"]}, "claims: wrong audience"),
        ({"aud": None}, "claims: missing claim aud"),
        ({"aud": ["client-1", "api"]}, "claims: untrusted extra audience"),
        ({"azp": "client-2"}, "claims: azp is not the client"),
        ({"sub": None}, "claims: missing claim sub"),
        ({"sub": ""}, "claims: claim sub is not a string"),
        ({"sub": "x" * 256}, "claims: claim sub is not a string"),
        ({"exp": None}, "claims: missing claim exp"),
        ({"exp": int(NOW) - 31}, "claims: expired"),
        ({"exp": "9999999999"}, "claims: claim exp is not a numeric date"),
        ({"iat": None}, "claims: missing claim iat"),
        ({"iat": int(NOW) + 31}, "claims: issued in the future"),
        ({"nbf": int(NOW) + 31}, "claims: not yet valid"),
        ({"nonce": None}, "claims: nonce mismatch"),
        ({"nonce": NONCE + "x"}, "claims: nonce mismatch"),
        ({"nonce": 1}, "claims: nonce mismatch"),
        ({"auth_time": int(NOW) + 31}, "claims: auth_time in the future"),
        ({"auth_time": "yesterday"}, "claims: claim auth_time is not a numeric date"),
    ],
)
async def test_claim_checks(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(IdTokenError) as info:
        await verify(token(payload=claims(**changes)))
    assert info.value.reason == reason


async def test_multiple_audiences_need_azp() -> None:
    expect = replace(EXPECT, trusted_audiences=frozenset({"api"}))
    with pytest.raises(IdTokenError) as info:
        await verify(token(payload=claims(aud=["client-1", "api"])), expect)
    assert info.value.reason == "claims: azp is not the client"


async def test_expiry_boundary_with_leeway() -> None:
    late = token(payload=claims(exp=int(NOW) - 29, iat=int(NOW) - 100))
    await verify(late)
    with pytest.raises(IdTokenError) as info:
        await verify(late, replace(EXPECT, leeway=0))
    assert info.value.reason == "claims: expired"


async def test_max_age_needs_recent_auth_time() -> None:
    expect = replace(EXPECT, max_age=60)
    await verify(token(payload=claims(auth_time=int(NOW) - 60)), expect)
    with pytest.raises(IdTokenError, match="id token"):
        await verify(token(payload=claims(auth_time=int(NOW) - 91)), expect)
    with pytest.raises(IdTokenError):
        await verify(token(payload=claims(auth_time=None)), expect)


# -- at_hash ------------------------------------------------------------------------


def _at_hash(access_token: str, digest: Callable[[bytes], hashlib._Hash]) -> str:
    full = digest(access_token.encode()).digest()
    return b64url_encode(full[: len(full) // 2])


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        ("RS256", hashlib.sha256),
        ("PS256", hashlib.sha256),
        ("ES256", hashlib.sha256),
        ("EdDSA", hashlib.sha512),
    ],
)
async def test_at_hash_matches(alg: str, digest: Callable[[bytes], hashlib._Hash]) -> None:
    access = "SlAV32hkKG"
    tok = token(alg, payload=claims(at_hash=_at_hash(access, digest)))
    await verify(tok, access_token=access)
    with pytest.raises(IdTokenError) as info:
        await verify(tok, access_token=access + "x")
    assert info.value.reason == "claims: at_hash mismatch"


def test_at_hash_known_answer_oidc_core_example() -> None:
    # at_hash of the access token in OIDC Core A.4 (RS256: SHA-256 left half).
    check_at_hash("77QmUPtjPfzWtF2AnpK9RQ", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256")
    with pytest.raises(IdTokenError):
        check_at_hash(
            "77QmUPtjPfzWtF2AnpK9RQ", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "EdDSA"
        )


def test_allowed_algorithms_intersect_config_discovery_and_support() -> None:
    assert allowed_algorithms(("RS256", "ES256"), frozenset({"RS256", "HS256", "none"})) == {
        "RS256"
    }
    with pytest.raises(IdTokenError):
        allowed_algorithms(("ES256",), frozenset({"RS256"}))
    with pytest.raises(IdTokenError):
        allowed_algorithms(("HS256", "none"), frozenset({"HS256", "none"}))


# -- forged tokens against the real provider's JWKS -------------------------------


def _provider_jwks(rp: Rp) -> list[dict[str, str]]:
    with urllib.request.urlopen(rp.provider.issuer + "/jwks", timeout=10) as resp:
        return list(json.loads(resp.read())["keys"])


def _real_expect(rp: Rp) -> IdTokenExpectations:
    return replace(
        EXPECT,
        issuer=rp.provider.issuer,
        client_id=CLIENT_ID,
        now=rp.clock(),
        algorithms=frozenset({"RS256"}),
    )


def _real_claims(rp: Rp) -> dict[str, object]:
    now = int(rp.clock())
    return claims(iss=rp.provider.issuer, aud=CLIENT_ID, iat=now, exp=now + 60, auth_time=now)


async def test_forgeries_against_the_providers_jwks(rp: Rp) -> None:
    """Forged tokens checked through the JWKS cache of the real provider (the allow twin is
    every login in test_flow.py, which verifies real ID tokens through the same cache)."""
    real_kid = _provider_jwks(rp)[0]["kid"]
    payload = _real_claims(rp)
    public_pem = b"-----BEGIN PUBLIC KEY-----"
    forged = [
        token(payload=payload, header={"kid": "not-published"}, signer=_sign_rs256(OTHER_RSA)),
        token(payload=payload, header={"kid": real_kid}, signer=_sign_rs256(OTHER_RSA)),
        token(payload=payload, header={"kid": real_kid, "alg": "none"}, signer=lambda _: b""),
        token(
            payload=payload,
            header={"kid": real_kid, "alg": "HS256"},
            signer=lambda d: hmac.new(CLIENT_SECRET.encode(), d, hashlib.sha256).digest(),
        ),
        token(
            payload=payload,
            header={"kid": real_kid, "alg": "HS256"},
            signer=lambda d: hmac.new(public_pem, d, hashlib.sha256).digest(),
        ),
    ]
    for tok in forged:
        with pytest.raises(IdTokenError):
            await verify_id_token(tok, keys=rp.rp.jwks, expect=_real_expect(rp))
