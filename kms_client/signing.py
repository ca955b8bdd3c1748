"""Ed25519 signers held by the keyring, their public JWKs and RFC 7638 key ids.

A signer is made from a keyring entry, never from caller-supplied bytes
outside this package. ``kid`` is always the RFC 7638 thumbprint of the public
JWK (members ``crv``, ``kty``, ``x`` in that order, no whitespace, SHA-256,
base64url without padding), so any verifier can recompute it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM = "EdDSA"


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_raw(public_key))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url(hashlib.sha256(canonical).digest())


def public_jwk(public_key: Ed25519PublicKey, *, kid: str) -> dict[str, str]:
    """The public JWK (RFC 8037) with ``kid``, ``alg`` and ``use``."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_raw(public_key)),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


@dataclass(frozen=True, eq=False)
class KeySigner:
    """One Ed25519 key pair of a signing purpose; signs only while it is the primary."""

    purpose: str
    version: int
    kid: str
    _private: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def from_seed(cls, purpose: str, version: int, seed: bytes) -> KeySigner:
        """Build from the keyring's 32-byte Ed25519 seed."""
        private = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(purpose, version, thumbprint(private.public_key()), private)

    @property
    def algorithm(self) -> str:
        """JOSE ``alg`` of the signatures (``EdDSA``)."""
        return ALGORITHM

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature of ``data`` (64 bytes)."""
        return self._private.sign(data)

    def public_key(self) -> Ed25519PublicKey:
        """The public half, for verification inside the gateway."""
        return self._private.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK of this key pair, ``kid`` included."""
        return public_jwk(self._private.public_key(), kid=self.kid)
