"""Signers held by the keyring (Ed25519 or P-256), their public JWKs and RFC 7638 key ids.

A signer is made from a keyring entry, never from caller-supplied bytes
outside this package. ``kid`` is always the RFC 7638 thumbprint of the public
JWK (required members in lexicographic order: ``crv, kty, x`` for OKP,
``crv, kty, x, y`` for EC; no whitespace, SHA-256, base64url without
padding), so any verifier can recompute it. ES256 signatures are JOSE's raw
``r || s`` (64 bytes, RFC 7518 section 3.4), never DER.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kms_client.keyring import SigningAlgorithm

ALGORITHM = SigningAlgorithm.EDDSA.value

type SigningPublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
type _Private = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _members(public_key: SigningPublicKey) -> dict[str, str]:
    """The RFC 7638 required members of the public JWK."""
    if isinstance(public_key, Ed25519PublicKey):
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_raw(public_key))}
    numbers = public_key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(public_key: SigningPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 or P-256 public key."""
    canonical = json.dumps(_members(public_key), separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public_key: SigningPublicKey, *, kid: str) -> dict[str, str]:
    """The public JWK (RFC 8037 OKP or RFC 7518 EC) with ``kid``, ``alg`` and ``use``."""
    ed = isinstance(public_key, Ed25519PublicKey)
    alg = SigningAlgorithm.EDDSA if ed else SigningAlgorithm.ES256
    return {**_members(public_key), "kid": kid, "alg": alg.value, "use": "sig"}


@dataclass(frozen=True, eq=False)
class KeySigner:
    """One key pair of a signing purpose; signs only while it is the primary."""

    purpose: str
    version: int
    kid: str
    _private: _Private = field(repr=False)

    @classmethod
    def from_seed(cls, purpose: str, version: int, seed: bytes) -> KeySigner:
        """Build from the keyring's 32-byte Ed25519 seed."""
        private = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(purpose, version, thumbprint(private.public_key()), private)

    @classmethod
    def from_material(
        cls, purpose: str, version: int, material: bytes, algorithm: SigningAlgorithm
    ) -> KeySigner:
        """Build from a keyring key: an Ed25519 seed or a P-256 private scalar."""
        if algorithm is SigningAlgorithm.EDDSA:
            return cls.from_seed(purpose, version, material)
        private = ec.derive_private_key(int.from_bytes(material, "big"), ec.SECP256R1())
        return cls(purpose, version, thumbprint(private.public_key()), private)

    @property
    def algorithm(self) -> str:
        """JOSE ``alg`` of the signatures (``EdDSA`` or ``ES256``)."""
        if isinstance(self._private, Ed25519PrivateKey):
            return SigningAlgorithm.EDDSA.value
        return SigningAlgorithm.ES256.value

    def sign(self, data: bytes) -> bytes:
        """The signature of ``data``: 64 bytes (Ed25519, or ES256 as raw ``r || s``)."""
        if isinstance(self._private, Ed25519PrivateKey):
            return self._private.sign(data)
        r, s = decode_dss_signature(self._private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def public_key(self) -> SigningPublicKey:
        """The public half, for verification inside the gateway."""
        return self._private.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK of this key pair, ``kid`` included."""
        return public_jwk(self._private.public_key(), kid=self.kid)
