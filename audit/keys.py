"""Ed25519 public keys for checkpoint verification: RFC 7638 kids, PEM and JWKS files.

``kid`` is always the RFC 7638 thumbprint of the public JWK (members ``crv``,
``kty``, ``x``; sorted, no whitespace; SHA-256; base64url without padding), so
anyone can recompute it. A JWKS given to the verifier is trusted for its keys
only: a ``kid`` that is not the key's own thumbprint is refused, and so is any
private key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from audit.errors import AuditKeyError

MAX_KEY_FILE = 1 << 16


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url decoding; raises ValueError on anything else."""
    if "=" in text or not text.isascii():
        raise ValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as e:
        raise ValueError("not base64url") from e
    if b64url(data) != text:  # refuse non-canonical encodings (stray trailing bits)
        raise ValueError("not canonical base64url")
    return data


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an Ed25519 public key."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public(key))}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url(hashlib.sha256(canonical).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The public JWK (RFC 8037) of ``key`` with its thumbprint as ``kid``."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": thumbprint(key)}


def key_from_jwk(jwk: Mapping[str, object]) -> Ed25519PublicKey:
    """The public key of one Ed25519 JWK; refuses other types, private members and false kids."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise AuditKeyError("audit: jwks holds a key that is not OKP/Ed25519")
    if "d" in jwk:
        raise AuditKeyError("audit: jwks holds private key material")
    x = jwk.get("x")
    try:
        raw = b64url_decode(x) if isinstance(x, str) else b""
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as e:
        raise AuditKeyError("audit: jwks key has a bad 'x'") from e
    kid = jwk.get("kid")
    if kid is not None and kid != thumbprint(key):
        raise AuditKeyError("audit: jwks key 'kid' is not its rfc 7638 thumbprint")
    return key


def keys_from_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    """``{kid: key}`` from a JWKS (``{"keys": [...]}``) or a single JWK object."""
    items = document["keys"] if isinstance(document, dict) and "keys" in document else [document]
    if not isinstance(items, list) or not items:
        raise AuditKeyError("audit: jwks has no keys")
    out: dict[str, Ed25519PublicKey] = {}
    for item in items:
        if not isinstance(item, dict):
            raise AuditKeyError("audit: jwks entry is not an object")
        key = key_from_jwk(item)
        out[thumbprint(key)] = key
    return out


def load_jwks(path: Path) -> dict[str, Ed25519PublicKey]:
    """Verification keys from a JWKS file."""
    data = read_key_file(path)
    try:
        document = json.loads(data)
    except ValueError as e:
        raise AuditKeyError(f"audit: {path} is not json") from e
    return keys_from_jwks(document)


def load_public_pem(path: Path) -> dict[str, Ed25519PublicKey]:
    """The verification key in a PEM file: a public key, or the public half of a private key."""
    data = read_key_file(path)
    key: object
    try:
        if b"PRIVATE KEY" in data:
            key = load_pem_private_key(data, password=None)
            if isinstance(key, Ed25519PrivateKey):
                key = key.public_key()
        else:
            key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise AuditKeyError(f"audit: {path} is not a usable pem key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"audit: {path} is not an ed25519 key")
    return {thumbprint(key): key}


def read_key_file(path: Path, *, label: str = "key file") -> bytes:
    """A small key file's bytes, with errors that name the path only, never the content."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise AuditKeyError(f"audit: cannot read {label} {path} ({e.strerror})") from e
    if len(data) > MAX_KEY_FILE:
        raise AuditKeyError(f"audit: {label} {path} is too large")
    return data
