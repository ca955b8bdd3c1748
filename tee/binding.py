"""Binding attestation evidence to a worker's key and a verifier's nonce.

Rules (docs/tee-protocol.md, "Binding evidence to a key and a nonce"):

- ``report_data = SHA-512("tokengate-tee-binding/1" || 0x00 || nonce || public_key)``
  with a 32-byte nonce chosen by the verifier and the worker's raw 32-byte
  X25519 public key.
- Platforms with 64 bytes of report data (SEV-SNP, TDX, SGX) carry exactly that
  value; Nitro carries the nonce and the key in its own ``nonce`` and
  ``public_key`` fields; the simulated TEE carries all three.

Both sides of an attestation (the worker producing evidence, the gateway and
the KMS checking it) use these functions, so the binding is spelled once.
"""

from __future__ import annotations

import hashlib

from tee.attestation import Expectation, Platform
from tee.errors import BindingError

DOMAIN = b"tokengate-tee-binding/1"
NONCE_SIZE = 32
PUBLIC_KEY_SIZE = 32


def _check(nonce: bytes, public_key: bytes) -> None:
    if len(nonce) != NONCE_SIZE:
        raise BindingError(f"binding: the nonce must be {NONCE_SIZE} bytes")
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise BindingError(f"binding: the public key must be {PUBLIC_KEY_SIZE} bytes")


def report_data(nonce: bytes, public_key: bytes) -> bytes:
    """The 64 bytes of report data that bind ``public_key`` and ``nonce``."""
    _check(nonce, public_key)
    return hashlib.sha512(DOMAIN + b"\x00" + nonce + public_key).digest()


def expectation(platform: Platform | str, nonce: bytes, public_key: bytes) -> Expectation:
    """What a verifier of ``platform`` must find bound into the evidence."""
    _check(nonce, public_key)
    try:
        chosen = Platform(platform)
    except ValueError as e:
        raise BindingError("binding: unknown platform") from e
    if chosen is Platform.NITRO:
        return Expectation(nonce=nonce, public_key=public_key)
    if chosen is Platform.SIM:
        return Expectation(
            nonce=nonce, public_key=public_key, report_data=report_data(nonce, public_key)
        )
    return Expectation(report_data=report_data(nonce, public_key))
