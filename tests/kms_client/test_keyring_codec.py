"""The keyring codec's known answers: pre-ES256 keyrings parse unchanged, ES256 keys round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kms_client import keyring_codec
from kms_client.errors import KeyringError
from kms_client.keyring import SigningAlgorithm
from kms_client.keyview import KeyView
from proxy.auth import jose

VECTORS = json.loads((Path(__file__).parent / "vectors" / "keyring_codec_v1.json").read_text())[
    "vectors"
]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_known_keyrings_parse_and_encode_to_the_same_bytes(v: dict[str, object]) -> None:
    data = str(v["encoding"]).encode()
    keyring = keyring_codec.decode(data)
    assert keyring_codec.encode(keyring) == data
    view = KeyView(keyring, known_usage={})
    expected = v["signing"]
    assert isinstance(expected, list)
    found = view.verifiers("session-signing")
    assert [(s.version, s.algorithm, s.kid) for s in found] == [
        (e["version"], e["algorithm"], e["kid"]) for e in expected
    ]
    for signer, e in zip(found, expected, strict=True):
        jwk = signer.public_jwk()
        assert jwk["x"] == e.get("x", jwk["x"])
        assert jwk.get("y") == e.get("y")
        assert jose.jwk_thumbprint(jwk) == signer.kid  # an independent RFC 7638 implementation


def test_es256_vector_signs_raw_r_s_that_verifies_with_the_rfc7515_public_key() -> None:
    keyring = keyring_codec.decode(str(VECTORS[1]["encoding"]).encode())
    signer = KeyView(keyring, known_usage={}).signer("session-signing")
    assert signer.algorithm == "ES256"
    public = jose.public_key_from_jwk(
        {k: VECTORS[1]["signing"][0][k] for k in ("x", "y")} | {"kty": "EC", "crv": "P-256"}
    )
    assert isinstance(public, ec.EllipticCurvePublicKey)
    sig = signer.sign(b"payload")
    assert len(sig) == 64  # JOSE r||s, not DER
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, b"payload", ec.ECDSA(hashes.SHA256()))


def _es256_doc() -> dict[str, object]:
    doc: dict[str, object] = json.loads(str(VECTORS[1]["encoding"]))
    return doc


def _es256_key(doc: dict[str, object]) -> dict[str, object]:
    return doc["purposes"]["session-signing"]["keys"][2]  # type: ignore[index, no-any-return]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: _es256_key(d).update(algorithm="EdDSA"), id="explicit default"),
        pytest.param(lambda d: _es256_key(d).update(algorithm="RS256"), id="unknown algorithm"),
        pytest.param(lambda d: _es256_key(d).update(algorithm=None), id="null algorithm"),
        pytest.param(
            lambda d: d["purposes"]["mfa-secrets"]["keys"][0].update(algorithm="ES256"),
            id="algorithm on an aead key",
        ),
        pytest.param(
            lambda d: _es256_key(d).update(material="/////////////////////////////////////////w=="),
            id="scalar out of range",
        ),
        pytest.param(
            lambda d: _es256_key(d).update(material="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            id="zero scalar",
        ),
    ],
)
def test_codec_refuses_bad_algorithm_members(mutate) -> None:
    doc = _es256_doc()
    mutate(doc)
    with pytest.raises(KeyringError) as info:
        keyring_codec.decode(json.dumps(doc).encode())
    assert "jpsQ" not in str(info.value)


def test_codec_accepts_the_unmodified_es256_twin() -> None:
    keyring = keyring_codec.decode(json.dumps(_es256_doc()).encode())
    assert keyring.ring("session-signing").algorithm is SigningAlgorithm.ES256
