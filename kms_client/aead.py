"""The keyring ciphertext format (frozen; known-answer vectors in tests/kms_client/vectors/).

Rules:
- A ciphertext is ``prefix || nonce || AES-256-GCM(key, nonce, plaintext, aad)``:
  ``prefix`` is 5 bytes, one format byte ``0x01`` then the key version as an
  unsigned 32-bit big-endian integer; ``nonce`` is 12 random bytes from
  :func:`kms_client.rng.random_bytes`; the GCM tag (16 bytes) ends the output.
  Overhead: 33 bytes.
- ``aad = prefix || u32(len(purpose)) || purpose || u32(len(context)) || context``
  (purpose as UTF-8, lengths big-endian): the version, the purpose and the
  caller's context are all authenticated, so a ciphertext cannot be moved to
  another purpose, another record, or relabelled with another version.
- Decryption reads the version from the prefix and tries exactly that key.
- Every failure (short input, unknown format byte, bad tag) raises the one
  opaque :class:`kms_client.errors.DecryptionError`.
- A new format gets a new format byte; old ones stay readable.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_client import rng
from kms_client.errors import DecryptionError

FORMAT_V1 = 0x01
PREFIX_LEN = 5
NONCE_LEN = 12
TAG_LEN = 16
OVERHEAD = PREFIX_LEN + NONCE_LEN + TAG_LEN
MAX_VERSION = 0xFFFFFFFF

_PREFIX = struct.Struct(">BI")
_LEN = struct.Struct(">I")


def prefix(version: int) -> bytes:
    """The 5-byte prefix naming key ``version`` in format v1."""
    if not 1 <= version <= MAX_VERSION:
        raise ValueError("kms: key version out of range")
    return _PREFIX.pack(FORMAT_V1, version)


def version_of(ciphertext: bytes) -> int:
    """The key version a ciphertext names; DecryptionError if it is not format v1."""
    if len(ciphertext) < OVERHEAD or ciphertext[0] != FORMAT_V1:
        raise DecryptionError
    _, version = _PREFIX.unpack_from(ciphertext)
    return int(version)


def associated_data(version: int, purpose: str, context: bytes) -> bytes:
    """The AAD of v1: prefix, purpose and context, each length-framed."""
    p = purpose.encode("utf-8")
    return b"".join((prefix(version), _LEN.pack(len(p)), p, _LEN.pack(len(context)), context))


def encrypt(
    cipher: AESGCM, version: int, purpose: str, plaintext: bytes, *, context: bytes
) -> bytes:
    """Encrypt under key ``version`` (``cipher`` holds it) with a fresh random nonce."""
    nonce = rng.random_bytes(NONCE_LEN)
    return encrypt_with_nonce(cipher, version, purpose, plaintext, context=context, nonce=nonce)


def encrypt_with_nonce(
    cipher: AESGCM, version: int, purpose: str, plaintext: bytes, *, context: bytes, nonce: bytes
) -> bytes:
    """WARNING: reusing a nonce under one key breaks GCM; only for known-answer vectors."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("kms: nonce must be 12 bytes")
    aad = associated_data(version, purpose, context)
    return prefix(version) + nonce + cipher.encrypt(nonce, plaintext, aad)


def decrypt(cipher: AESGCM, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
    """Decrypt a v1 ciphertext whose key ``cipher`` holds; one opaque error on any failure."""
    version = version_of(ciphertext)
    nonce = ciphertext[PREFIX_LEN : PREFIX_LEN + NONCE_LEN]
    aad = associated_data(version, purpose, context)
    try:
        return cipher.decrypt(nonce, ciphertext[PREFIX_LEN + NONCE_LEN :], aad)
    except InvalidTag as e:
        raise DecryptionError from e
