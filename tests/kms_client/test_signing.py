"""Keyring signers: RFC 7638 thumbprints (RFC 8037 and RFC 7515 examples), JWKs, ES256 r||s."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from audit import keys as audit_keys
from kms_client.keyring import SigningAlgorithm
from kms_client.signing import KeySigner, thumbprint

# RFC 8037 appendix A.1 / A.3: the Ed25519 example key and its RFC 7638 thumbprint.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _seed() -> bytes:
    return base64.urlsafe_b64decode(RFC8037_D + "=")


def test_kid_is_the_rfc7638_thumbprint_of_the_rfc8037_example() -> None:
    signer = KeySigner.from_seed("upstream-signing", 1, _seed())
    assert signer.kid == RFC8037_KID
    assert signer.public_jwk() == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC8037_X,
        "kid": RFC8037_KID,
        "alg": "EdDSA",
        "use": "sig",
    }


def test_audit_package_computes_the_same_kid() -> None:
    signer = KeySigner.from_seed("audit-checkpoint", 1, _seed())
    public = signer.public_key()
    assert isinstance(public, Ed25519PublicKey)
    assert audit_keys.thumbprint(public) == signer.kid == thumbprint(public)


def test_signature_verifies_and_tampered_message_does_not() -> None:
    signer = KeySigner.from_seed("audit-checkpoint", 1, _seed())
    sig = signer.sign(b"checkpoint")
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(RFC8037_X + "="))
    public.verify(sig, b"checkpoint")
    with pytest.raises(InvalidSignature):
        public.verify(sig, b"checkpoinT")


def test_repr_hides_the_private_key() -> None:
    signer = KeySigner.from_seed("audit-checkpoint", 1, _seed())
    assert "_private" not in repr(signer)
    assert RFC8037_D not in repr(signer)


# RFC 7515 appendix A.3: the P-256 example key (d, x, y).
RFC7515_D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
RFC7515_X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
RFC7515_Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"


def _es256() -> KeySigner:
    scalar = base64.urlsafe_b64decode(RFC7515_D + "=")
    return KeySigner.from_material("session-signing", 4, scalar, SigningAlgorithm.ES256)


def test_es256_signer_derives_the_rfc7515_public_key_and_its_thumbprint() -> None:
    signer = _es256()
    jwk = signer.public_jwk()
    assert jwk == {
        "kty": "EC",
        "crv": "P-256",
        "x": RFC7515_X,
        "y": RFC7515_Y,
        "kid": signer.kid,
        "alg": "ES256",
        "use": "sig",
    }
    members = json.dumps({"crv": "P-256", "kty": "EC", "x": RFC7515_X, "y": RFC7515_Y})
    expected = hashlib.sha256(members.replace(" ", "").encode()).digest()
    assert signer.kid == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    assert signer.algorithm == "ES256"


def test_es256_signature_is_raw_r_s_and_verifies_only_for_its_message() -> None:
    signer = _es256()
    public = signer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    sig = signer.sign(b"access token")
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, b"access token", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(der, b"access tokeN", ec.ECDSA(hashes.SHA256()))


def test_from_material_with_eddsa_is_the_seed_signer() -> None:
    signer = KeySigner.from_material("upstream-signing", 1, _seed(), SigningAlgorithm.EDDSA)
    assert (signer.kid, signer.algorithm) == (RFC8037_KID, "EdDSA")
