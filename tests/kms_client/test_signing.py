"""Ed25519 signers: RFC 7638 thumbprints (RFC 8037 example), JWKs, audit compatibility."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import keys as audit_keys
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
    assert (
        audit_keys.thumbprint(signer.public_key()) == signer.kid == thumbprint(signer.public_key())
    )


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
