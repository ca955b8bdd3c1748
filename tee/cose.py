"""COSE_Sign1 (RFC 9052) with ES384: only what AWS Nitro attestation documents need.

Rules this module keeps (every violation raises ``EvidenceRefused``):
- The input is one CBOR item and nothing after it: the COSE_Sign1 array, bare
  or under CBOR tag 18. Any other tag, shape or trailing byte is ``format``.
- The protected header is a serialized map whose ``alg`` (label 1) is ES384
  (-35) and that carries no ``crit`` (label 2): we understand no critical
  header. Any other algorithm is refused (``signature``), whatever else says so.
- The unprotected header must be empty: it is not covered by the signature and
  Nitro never fills it, so anything there could only be an attacker's.
- The signature is raw ``r || s`` (48 bytes each) over the RFC 9052
  Sig_structure ``["Signature1", protected, external_aad = b"", payload]``,
  checked with ECDSA P-384 / SHA-384.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tee.errors import EvidenceRefused

COSE_SIGN1_TAG = 18
ALG_ES384 = -35
_HEADER_ALG = 1
_HEADER_CRIT = 2
_ES384_SIZE = 48  # bytes of r and of s


@dataclass(frozen=True, slots=True)
class Sign1:
    """A decoded COSE_Sign1 whose header is ES384; the signature is not checked yet."""

    protected: bytes
    payload: bytes
    signature: bytes

    def to_be_signed(self) -> bytes:
        """The RFC 9052 Sig_structure for this message (external_aad empty)."""
        return cbor2.dumps(["Signature1", self.protected, b"", self.payload])


def loads_exact(data: bytes, what: str) -> object:
    """Decode exactly one CBOR item from ``data``; trailing bytes or bad CBOR: ``format``."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as e:
        raise EvidenceRefused("format", f"{what} is not valid cbor") from e
    if stream.tell() != len(data):
        raise EvidenceRefused("format", f"{what} has trailing bytes")
    return item


def decode_sign1(data: bytes) -> Sign1:
    """Parse a COSE_Sign1 (bare or tag 18) and check its header says ES384 and nothing more."""
    item = loads_exact(data, "cose_sign1")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise EvidenceRefused("format", f"cbor tag {item.tag} is not cose_sign1")
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise EvidenceRefused("format", "cose_sign1 is not an array of four")
    protected, unprotected, payload, signature = item
    if not (
        isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)
    ):
        raise EvidenceRefused("format", "cose_sign1 members have the wrong types")
    if unprotected != {}:
        raise EvidenceRefused("format", "cose unprotected header is not empty")
    _check_protected(protected)
    return Sign1(protected=protected, payload=payload, signature=signature)


def _check_protected(protected: bytes) -> None:
    """The serialized protected header names ES384 and no critical header."""
    header = loads_exact(protected, "cose protected header")
    if not isinstance(header, dict):
        raise EvidenceRefused("format", "cose protected header is not a map")
    if _HEADER_CRIT in header:
        raise EvidenceRefused("format", "cose protected header lists critical headers")
    alg = header.get(_HEADER_ALG)
    # bool is an int to Python but not to CBOR: `True == 1` must not pass for an alg.
    if type(alg) is not int or alg != ALG_ES384:
        raise EvidenceRefused("signature", "cose alg is not es384")


def verify_es384(message: Sign1, public_key: ec.EllipticCurvePublicKey) -> None:
    """Check the ES384 signature of ``message`` with ``public_key`` (a P-384 key)."""
    if not isinstance(public_key.curve, ec.SECP384R1):
        raise EvidenceRefused("signature", "signing key is not p-384")
    raw = message.signature
    if len(raw) != 2 * _ES384_SIZE:
        raise EvidenceRefused("signature", "es384 signature is not 96 bytes")
    r = int.from_bytes(raw[:_ES384_SIZE], "big")
    s = int.from_bytes(raw[_ES384_SIZE:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s), message.to_be_signed(), ec.ECDSA(hashes.SHA384())
        )
    except InvalidSignature as e:
        raise EvidenceRefused("signature", "cose signature does not verify") from e
