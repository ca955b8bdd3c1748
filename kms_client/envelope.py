"""The wrapped keyring as stored: a header and the keyring sealed under a KWK.

Stored bytes are canonical JSON with these fields:
``format`` (``tokengate-wrapped-keyring/1``), ``name`` (the store identity,
``keys.keyring_name``), ``keyring_version`` (bumped on every save; the
store's compare-and-set counter), ``kwk_version`` and ``kwk_reference`` (what
the root backend needs to reopen the KWK), ``nonce`` and ``ciphertext``
(AES-256-GCM of the canonical keyring). The AAD is the canonical JSON of every
field but ``nonce`` and ``ciphertext``, so swapping a blob between stores,
relabelling its version or pointing it at another KWK all fail the tag.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_client import keyring_codec, rng
from kms_client.errors import KeyringError
from kms_client.keyring import Keyring

FORMAT = "tokengate-wrapped-keyring/1"
_FIELDS = {
    "format",
    "name",
    "keyring_version",
    "kwk_version",
    "kwk_reference",
    "nonce",
    "ciphertext",
}


@dataclass(frozen=True)
class Header:
    """The authenticated, non-secret part of a wrapped keyring."""

    name: str
    keyring_version: int
    kwk_version: int
    kwk_reference: bytes = field(repr=False)

    def aad(self) -> bytes:
        """Canonical JSON of the header: the AAD of the keyring ciphertext."""
        doc = {
            "format": FORMAT,
            "name": self.name,
            "keyring_version": self.keyring_version,
            "kwk_version": self.kwk_version,
            "kwk_reference": _b64(self.kwk_reference),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def wrap(keyring: Keyring, header: Header, kwk: bytes) -> bytes:
    """Seal ``keyring`` under ``kwk`` with ``header`` bound as AAD."""
    nonce = rng.random_bytes(12)
    sealed = AESGCM(kwk).encrypt(nonce, keyring_codec.encode(keyring), header.aad())
    doc = json.loads(header.aad())
    doc["nonce"] = _b64(nonce)
    doc["ciphertext"] = _b64(sealed)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def read_header(blob: bytes, *, name: str) -> Header:
    """The header of a stored blob, checked to belong to keyring ``name``."""
    try:
        doc = json.loads(blob)
        if not isinstance(doc, dict) or set(doc) != _FIELDS or doc["format"] != FORMAT:
            raise KeyringError("kms: stored keyring is not a tokengate wrapped keyring")
        header = Header(
            str(doc["name"]),
            _int(doc["keyring_version"]),
            _int(doc["kwk_version"]),
            base64.b64decode(doc["kwk_reference"], validate=True),
        )
    except KeyringError:
        raise
    except (ValueError, TypeError, binascii.Error) as e:
        raise KeyringError("kms: stored keyring is not a tokengate wrapped keyring") from e
    if header.name != name:
        raise KeyringError(
            f"kms: stored keyring belongs to keyring '{header.name}', not '{name}'"
            " (keys.keyring_name)"
        )
    return header


def unwrap(blob: bytes, header: Header, kwk: bytes) -> Keyring:
    """Open a blob whose header :func:`read_header` returned; KeyringError if it was altered."""
    try:
        doc = json.loads(blob)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        sealed = base64.b64decode(doc["ciphertext"], validate=True)
        plain = AESGCM(kwk).decrypt(nonce, sealed, header.aad())
    except (InvalidTag, ValueError, TypeError, KeyError, binascii.Error) as e:
        raise KeyringError(
            "kms: stored keyring failed its integrity check (tampered, or wrapped under"
            " another root or KWK)"
        ) from e
    return keyring_codec.decode(plain)


def _int(raw: object) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        raise TypeError("expected a positive integer")
    return raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
