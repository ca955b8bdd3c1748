"""Access tokens: issue/verify, pinned algorithms, claim checks, rotation and the cache."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_client.keyring import P256_ORDER, SigningAlgorithm
from kms_client.rng import random_bytes
from kms_client.signing import KeySigner
from proxy.auth import jose
from proxy.auth.access_token import AccessClaims, AccessTokenIssuer, AccessTokenVerifier
from proxy.auth.errors import AuthError
from proxy.auth.jose import ES256, LocalSigningKey, PublicKey, SigningKey, b64url_encode

NOW = 1_700_000_000.0
ISS = "https://gateway.example"
AUD = "gateway.example"


class Ring:
    """A rotating key set, as the keyring exposes it."""

    def __init__(self, key: LocalSigningKey) -> None:
        self.primary: SigningKey = key
        self.public: dict[str, PublicKey] = {key.kid: key.verification_key}

    def rotate(self, key: LocalSigningKey) -> None:
        self.primary = key
        self.public[key.kid] = key.verification_key

    def keys(self) -> Mapping[str, PublicKey]:
        return dict(self.public)


def _ed() -> LocalSigningKey:
    return LocalSigningKey.ed25519(Ed25519PrivateKey.generate())


def _pair(ring: Ring, **verifier: object) -> tuple[AccessTokenIssuer, AccessTokenVerifier]:
    issuer = AccessTokenIssuer(
        signer=lambda: ring.primary, issuer=ISS, audience=AUD, random_bytes=random_bytes
    )
    options: dict[str, object] = {"keys": ring.keys, "issuer": ISS, "audience": AUD}
    options.update(verifier)
    return issuer, AccessTokenVerifier(**options)  # type: ignore[arg-type]


def _issue(issuer: AccessTokenIssuer, now: float = NOW, **kw: object) -> tuple[str, AccessClaims]:
    options: dict[str, object] = {
        "sub": "alice",
        "sid": "s1",
        "auth_time": int(now) - 10,
        "amr": ["pwd"],
        "acr": "urn:tokengate:acr:pwd",
        "roles": ["user"],
        "tenant": "acme",
        "now": now,
    }
    options.update(kw)
    return issuer.issue(**options)  # type: ignore[arg-type]


def _resign(token: str, key: SigningKey, **changes: object) -> str:
    """The same claims with ``changes``, signed again by ``key`` (a valid signature)."""
    payload = jose.json_object(jose.b64url_decode(token.split(".")[1]))
    payload.update(changes)
    for name in [k for k, v in changes.items() if v is None and k != "tenant"]:
        del payload[name]
    return jose.sign(payload, key, typ="at+jwt")


def test_issue_and_verify_round_trip() -> None:
    ring = Ring(_ed())
    issuer, verifier = _pair(ring)
    token, issued = _issue(issuer)
    claims = verifier.verify(token, now=NOW + 1)
    assert claims == issued
    assert claims.exp == int(NOW) + 300
    assert claims.nbf == claims.iat == int(NOW)
    assert claims.roles == ("user",)
    assert claims.amr == ("pwd",)
    assert claims.tenant == "acme"
    assert claims.jkt is None
    assert len(claims.jti) == 22
    header = jose.json_object(jose.b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": ring.primary.kid}


def test_dpop_binding_and_null_tenant_round_trip() -> None:
    ring = Ring(_ed())
    issuer, verifier = _pair(ring)
    jkt = jose.thumbprint_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    token, _ = _issue(issuer, jkt=jkt, tenant=None)
    claims = verifier.verify(token, now=NOW)
    assert claims.jkt == jkt
    assert claims.tenant is None
    assert jose.json_object(jose.b64url_decode(token.split(".")[1]))["cnf"] == {"jkt": jkt}


def test_with_a_keyring_signer() -> None:
    signer = KeySigner.from_seed("session-signing", 3, random_bytes(32))
    issuer = AccessTokenIssuer(
        signer=lambda: signer, issuer=ISS, audience=AUD, random_bytes=random_bytes
    )
    verifier = AccessTokenVerifier(
        keys=lambda: {signer.kid: signer.public_key()}, issuer=ISS, audience=AUD
    )
    token, _ = _issue(issuer)
    assert verifier.verify(token, now=NOW).sub == "alice"


def _es() -> LocalSigningKey:
    return LocalSigningKey.es256(ec.generate_private_key(ec.SECP256R1()))


def _es_issuer(ring: Ring) -> AccessTokenIssuer:
    return AccessTokenIssuer(
        signer=lambda: ring.primary,
        issuer=ISS,
        audience=AUD,
        random_bytes=random_bytes,
        algorithm=ES256,
    )


def test_es256_option() -> None:
    ring = Ring(_es())
    _, default = _pair(ring)
    _, es256 = _pair(ring, algorithms=frozenset({ES256}))
    token, _ = _issue(_es_issuer(ring))
    assert es256.verify(token, now=NOW).sub == "alice"
    with pytest.raises(AuthError):
        default.verify(token, now=NOW)  # EdDSA is pinned by default


def test_rotation_is_picked_up_and_old_tokens_live_while_their_key_is_listed() -> None:
    ring = Ring(_ed())
    issuer, verifier = _pair(ring)
    old, _ = _issue(issuer)
    ring.rotate(_ed())
    new, _ = _issue(issuer)
    assert jose.json_object(jose.b64url_decode(new.split(".")[0]))["kid"] == ring.primary.kid
    assert verifier.verify(old, now=NOW).sub == verifier.verify(new, now=NOW).sub


def test_cached_token_stops_verifying_when_its_key_leaves_the_keyring() -> None:
    ring = Ring(_ed())
    issuer, verifier = _pair(ring)
    token, _ = _issue(issuer)
    verifier.verify(token, now=NOW)
    assert verifier.cached() == 1
    old_kid = ring.primary.kid
    ring.rotate(_ed())
    del ring.public[old_kid]
    with pytest.raises(AuthError):
        verifier.verify(token, now=NOW)


@pytest.mark.parametrize(
    ("now", "ok"),
    [(NOW + 329, True), (NOW + 330, False), (NOW - 30, True), (NOW - 31, False)],
    ids=["exp-within-leeway", "expired", "nbf-within-leeway", "future-nbf"],
)
def test_time_window(now: float, ok: bool) -> None:
    issuer, verifier = _pair(Ring(_ed()))
    token, _ = _issue(issuer)
    if ok:
        assert verifier.verify(token, now=now).sub == "alice"
    else:
        with pytest.raises(AuthError):
            verifier.verify(token, now=now)


def test_cache_hit_still_checks_expiry() -> None:
    issuer, verifier = _pair(Ring(_ed()))
    token, _ = _issue(issuer)
    verifier.verify(token, now=NOW)
    assert verifier.cached() == 1
    assert verifier.verify(token, now=NOW + 329).sub == "alice"
    with pytest.raises(AuthError):
        verifier.verify(token, now=NOW + 330)
    assert verifier.cached() == 0


def test_cache_is_bounded_lru() -> None:
    issuer, verifier = _pair(Ring(_ed()), cache_size=2)
    tokens = [_issue(issuer, sid=f"s{i}")[0] for i in range(3)]
    verifier.verify(tokens[0], now=NOW)
    verifier.verify(tokens[1], now=NOW)
    verifier.verify(tokens[0], now=NOW)  # refresh 0: 1 becomes least recent
    verifier.verify(tokens[2], now=NOW)
    assert verifier.cached() == 2
    for token in tokens:  # all still verify (1 again through the signature)
        verifier.verify(token, now=NOW)


def test_expired_entries_are_evicted_on_the_next_call() -> None:
    issuer, verifier = _pair(Ring(_ed()))
    early, _ = _issue(issuer, now=NOW)
    late, _ = _issue(issuer, now=NOW + 200)
    verifier.verify(early, now=NOW + 200)
    verifier.verify(late, now=NOW + 200)
    assert verifier.cached() == 2
    verifier.verify(late, now=NOW + 331)
    assert verifier.cached() == 1


def test_cache_disabled() -> None:
    issuer, verifier = _pair(Ring(_ed()), cache_size=0)
    token, _ = _issue(issuer)
    verifier.verify(token, now=NOW)
    assert verifier.cached() == 0


# -- attack suite: a re-signed token with a valid signature and one bad claim --


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "other.example"},
        {"iss": "https://evil.example"},
        {"iat": NOW + 60, "nbf": NOW, "exp": NOW + 300},
        {"nbf": NOW + 120},
        {"exp": NOW - 100},
        {"sid": None},
        {"jti": None},
        {"auth_time": None},
        {"roles": "admin"},
        {"roles": [1]},
        {"amr": None},
        {"acr": 5},
        {"tenant": 5},
        {"cnf": {"jkt": "short"}},
        {"cnf": {"jkt": "A" * 43, "x5t#S256": "y"}},
        {"sub": ""},
    ],
    ids=lambda ch: ",".join(ch),
)
def test_bad_claim_with_a_valid_signature_is_refused(changes: dict[str, object]) -> None:
    ring = Ring(_ed())
    issuer, verifier = _pair(ring)
    token, _ = _issue(issuer)
    assert verifier.verify(_resign(token, ring.primary), now=NOW).sub == "alice"  # the twin
    with pytest.raises(AuthError):
        verifier.verify(_resign(token, ring.primary, **changes), now=NOW)


def test_token_signed_by_another_key_is_refused() -> None:
    ring = Ring(_ed())
    _, verifier = _pair(ring)
    intruder = LocalSigningKey.ed25519(Ed25519PrivateKey.generate(), kid=ring.primary.kid)
    stranger, _ = _issue(
        AccessTokenIssuer(
            signer=lambda: intruder, issuer=ISS, audience=AUD, random_bytes=random_bytes
        )
    )
    with pytest.raises(AuthError):
        verifier.verify(stranger, now=NOW)


def test_tampered_payload_is_refused_and_not_cached() -> None:
    issuer, verifier = _pair(Ring(_ed()))
    token, _ = _issue(issuer)
    header, payload, signature = token.split(".")
    claims = jose.json_object(jose.b64url_decode(payload))
    claims["roles"] = ["admin"]
    forged = f"{header}.{b64url_encode(json.dumps(claims).encode())}.{signature}"
    verifier.verify(token, now=NOW)
    with pytest.raises(AuthError):
        verifier.verify(forged, now=NOW)
    assert verifier.cached() == 1


def test_alg_none_and_wrong_typ_are_refused() -> None:
    ring = Ring(_ed())
    issuer, verifier = _pair(ring)
    token, _ = _issue(issuer)
    _, payload, _ = token.split(".")
    none_header = b64url_encode(
        b'{"alg":"none","typ":"at+jwt","kid":"%s"}' % ring.primary.kid.encode()
    )
    with pytest.raises(AuthError):
        verifier.verify(f"{none_header}.{payload}.", now=NOW)
    identity = jose.sign(
        jose.json_object(jose.b64url_decode(payload)), ring.primary, typ="tokengate-identity+jwt"
    )
    with pytest.raises(AuthError):
        verifier.verify(identity, now=NOW)


@pytest.mark.parametrize("lifetime", [0, 3601])
def test_lifetime_bounds(lifetime: int) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        AccessTokenIssuer(
            signer=_ed, issuer=ISS, audience=AUD, random_bytes=random_bytes, lifetime=lifetime
        )


def test_verifier_refuses_hs256_and_unbounded_leeway() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        AccessTokenVerifier(keys=dict, issuer=ISS, audience=AUD, algorithms=frozenset({"HS256"}))
    with pytest.raises(ValueError, match="leeway"):
        AccessTokenVerifier(keys=dict, issuer=ISS, audience=AUD, leeway=600)


_RING = Ring(_ed())
_ISSUER, _VERIFIER = _pair(_RING)
_TOKEN, _ = _issue(_ISSUER)


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(_TOKEN) - 1), bit=st.integers(0, 7))
def test_any_single_flipped_bit_fails_even_with_the_original_cached(index: int, bit: int) -> None:
    assert _VERIFIER.verify(_TOKEN, now=NOW).sub == "alice"
    raw = bytearray(_TOKEN.encode("ascii"))
    raw[index] ^= 1 << bit
    with pytest.raises(AuthError):
        _VERIFIER.verify(raw.decode("latin-1"), now=NOW)


# ---- the configured algorithm is pinned both ways (no alg confusion) ----


def _mixed() -> tuple[Ring, LocalSigningKey, LocalSigningKey]:
    """A key set holding one EdDSA and one ES256 key (as right after an algorithm switch)."""
    ed, es = _ed(), _es()
    ring = Ring(ed)
    ring.rotate(es)
    return ring, ed, es


def test_eddsa_token_is_refused_when_es256_is_configured() -> None:
    ring, ed, _ = _mixed()
    token = jose.sign(_claims_payload(), ed, typ="at+jwt")
    _, es256_only = _pair(ring, algorithms=frozenset({ES256}))
    with pytest.raises(AuthError):
        es256_only.verify(token, now=NOW)
    _, eddsa_only = _pair(ring)  # the twin: the same token where EdDSA is configured
    assert eddsa_only.verify(token, now=NOW).sub == "alice"


def test_es256_token_is_refused_when_eddsa_is_configured() -> None:
    ring, _, es = _mixed()
    token = jose.sign(_claims_payload(), es, typ="at+jwt")
    _, eddsa_only = _pair(ring)
    with pytest.raises(AuthError):
        eddsa_only.verify(token, now=NOW)
    _, es256_only = _pair(ring, algorithms=frozenset({ES256}))
    assert es256_only.verify(token, now=NOW).sub == "alice"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "HS256", "none", "ES384"])
def test_relabelled_alg_header_is_refused(alg: str) -> None:
    """An ES256 signature under another alg label never verifies, even with that alg allowed."""
    ring, _, es = _mixed()
    token = jose.sign(_claims_payload(), es, typ="at+jwt")
    header, payload, signature = token.split(".")
    forged_header = jose.json_object(jose.b64url_decode(header)) | {"alg": alg}
    forged = ".".join((b64url_encode(jose.json_compact(forged_header)), payload, signature))
    _, both = _pair(ring, algorithms=frozenset({"EdDSA", ES256}))
    if alg == ES256:
        assert both.verify(forged, now=NOW).sub == "alice"  # the unmodified twin
    else:
        with pytest.raises(AuthError):
            both.verify(forged, now=NOW)


def test_der_encoded_es256_signature_is_refused_raw_r_s_accepted() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    raw = LocalSigningKey.es256(private)
    der = LocalSigningKey(
        raw.kid, ES256, lambda d: private.sign(d, ec.ECDSA(hashes.SHA256())), raw.verification_key
    )
    ring = Ring(raw)
    _, verifier = _pair(ring, algorithms=frozenset({ES256}))
    good = jose.sign(_claims_payload(), raw, typ="at+jwt")
    assert verifier.verify(good, now=NOW).sub == "alice"
    header_payload = good.rsplit(".", 1)[0]
    der_sig = der.sign(header_payload.encode())
    with pytest.raises(AuthError):
        verifier.verify(f"{header_payload}.{b64url_encode(der_sig)}", now=NOW)


def test_issuer_refuses_a_key_of_the_other_algorithm_with_503() -> None:
    ring = Ring(_ed())
    with pytest.raises(AuthError) as info:
        _issue(_es_issuer(ring))
    assert info.value.status == 503
    ring.rotate(_es())  # the twin: once the primary is ES256 the issuer signs
    token, _ = _issue(_es_issuer(ring))
    assert jose.json_object(jose.b64url_decode(token.split(".")[0]))["alg"] == "ES256"


def test_keyring_es256_signer_round_trip_with_pinned_verifier() -> None:
    signer = KeySigner.from_material("session-signing", 2, _scalar(), SigningAlgorithm.ES256)
    issuer = AccessTokenIssuer(
        signer=lambda: signer, issuer=ISS, audience=AUD, random_bytes=random_bytes, algorithm=ES256
    )
    verifier = AccessTokenVerifier(
        keys=lambda: {signer.kid: signer.public_key()},
        issuer=ISS,
        audience=AUD,
        algorithms=frozenset({ES256}),
    )
    token, _ = _issue(issuer)
    assert len(jose.b64url_decode(token.split(".")[2])) == 64
    assert verifier.verify(token, now=NOW).sub == "alice"


def _scalar() -> bytes:
    while True:
        raw = random_bytes(32)
        if 0 < int.from_bytes(raw, "big") < P256_ORDER:
            return raw


def _claims_payload() -> dict[str, object]:
    return {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "sid": "s1",
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 300,
        "jti": "j1",
        "auth_time": int(NOW),
        "amr": ["pwd"],
        "acr": "urn:tokengate:acr:pwd",
        "roles": [],
        "tenant": None,
    }
