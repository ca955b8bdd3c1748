"""HKDF-SHA256 (RFC 5869) as one-shot HMACs: the key derivation of the keyring and the vault.

RFC 5869, section 2, with HashLen = 32:
- extract: ``PRK = HMAC-SHA256(salt, IKM)``; no salt means 32 zero bytes
  (the same HMAC key as ``b""``: HMAC pads short keys with zeros);
- expand: ``T(1) = HMAC-SHA256(PRK, info | 0x01)``,
  ``T(i) = HMAC-SHA256(PRK, T(i-1) | info | i)``; the output is the first
  ``length`` bytes of ``T(1) | T(2) | ...``, at most 255 blocks.

For a 32-byte key that is exactly two HMACs, each one call into OpenSSL
through :func:`hmac.digest`; cryptography's ``HKDF`` object costs several
times that per derivation, and the vault derives two keys per record. The
output is byte-identical to cryptography's HKDF (tests/kms_client/test_hkdf.py
checks RFC 5869's SHA-256 test cases and random inputs against it), so every
key derived before and after this module is the same.
"""

from __future__ import annotations

import hmac

HASH_LEN = 32
MAX_LENGTH = 255 * HASH_LEN
_NO_SALT = bytes(HASH_LEN)


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int = HASH_LEN) -> bytes:
    """WARNING: returns key material. HKDF-SHA256 of ``ikm`` (RFC 5869), ``length`` bytes.

    ``length`` is 1 to 8160 (255 blocks); ValueError otherwise.
    """
    if not 0 < length <= MAX_LENGTH:
        raise ValueError(f"hkdf: length must be 1 to {MAX_LENGTH} bytes")
    prk = hmac.digest(_NO_SALT if salt is None else salt, ikm, "sha256")
    if length <= HASH_LEN:  # the common case: one expand block
        return hmac.digest(prk, info + b"\x01", "sha256")[:length]
    okm = block = b""
    for i in range(1, -(-length // HASH_LEN) + 1):
        block = hmac.digest(prk, block + info + bytes([i]), "sha256")
        okm += block
    return okm[:length]
