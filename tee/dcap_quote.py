"""Intel DCAP quotes (SGX v3, TDX v4): strict parsing and the quote's own signature chain.

Layout (little-endian; Intel "SGX ECDSA Quote Library API" and "TDX DCAP Quoting
Library API"):

    header (48)  version u16 | att_key_type u16 (2 = ECDSA P-256) | tee_type u32
                 (0 SGX, 0x81 TDX) | qe_svn u16 | pce_svn u16 | qe_vendor_id 16 | user_data 20
    body         SGX enclave report (384) or TDX TD report 1.0 (584)
    sig_len u32, signature data:
      quote signature (64, r||s over header+body) | attestation key (64, x||y) |
      v4 only: certification data type u16 (6) + size u32 wrapping what follows |
      QE report (384) | QE report signature (64, by the PCK key) |
      QE auth data size u16 + data | certification data type u16 (5: PCK chain PEM) +
      size u32 + PEM (leaf, intermediate, root)

Rules kept here so that a flipped bit anywhere is refused:
- every length must consume its region exactly; only zero bytes may follow the
  signature data (quote buffers are padded with zeros, never with anything else);
- the PCK chain PEM must be the canonical PEM of the certificates it holds
  (optionally followed by NUL bytes), so no text outside the certificates is ignored;
- the quote signature verifies under the attestation key, the QE report binds
  SHA-256(attestation key || QE auth data) in its first 32 report-data bytes
  (the rest zero), and the QE report signature verifies under the PCK leaf key.
Trust in the PCK chain itself (pinned root, CRLs, time) is :mod:`tee.dcap`'s job.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from tee.errors import EvidenceRefused

HEADER_LEN = 48
SGX_REPORT_LEN = 384
TD_REPORT_LEN = 584
_ECDSA_P256 = 2
_CERT_QE_REPORT = 6
_CERT_PCK_CHAIN = 5
TD_DEBUG = 0x01  # TDATTRIBUTES byte 0, bit 0 (TUD.DEBUG)
SGX_DEBUG = 0x02  # SGX ATTRIBUTES.FLAGS bit 1


# TD report 1.0 fields of 48 bytes: (claim name, offset).
_TD_MEASUREMENTS = (
    ("mr_seam", 16),
    ("mrtd", 136),
    ("mr_config_id", 184),
    ("mr_owner", 232),
    ("mr_owner_config", 280),
    ("rtmr0", 328),
    ("rtmr1", 376),
    ("rtmr2", 424),
    ("rtmr3", 472),
)


class TeeType(IntEnum):
    """The header's tee_type."""

    SGX = 0x00
    TDX = 0x81


@dataclass(frozen=True, slots=True)
class Quote:
    """A parsed quote whose own signature chain has not been checked yet."""

    version: int
    tee_type: TeeType
    signed: bytes  # header + body: what the attestation key signs
    body: bytes
    signature: bytes
    attestation_key: bytes
    qe_report: bytes
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain: tuple[x509.Certificate, ...]  # leaf first

    @property
    def report_data(self) -> bytes:
        """REPORTDATA (64 B): the last 64 bytes of both body layouts."""
        return self.body[-64:]

    def measurements(self) -> dict[str, str]:
        """The body's identity fields as lowercase hex (SGX ids and svn in decimal)."""
        b = self.body
        if self.tee_type is TeeType.TDX:
            return {name: b[off : off + 48].hex() for name, off in _TD_MEASUREMENTS}
        isv_prod_id, isv_svn = struct.unpack_from("<HH", b, 256)
        return {
            "mrenclave": b[64:96].hex(),
            "mrsigner": b[128:160].hex(),
            "isv_prod_id": str(isv_prod_id),
            "isv_svn": str(isv_svn),
        }

    @property
    def debug(self) -> bool:
        """TDX: TD attributes DEBUG bit; SGX: enclave attributes DEBUG flag."""
        if self.tee_type is TeeType.TDX:
            return bool(self.body[120] & TD_DEBUG)
        return bool(self.body[48] & SGX_DEBUG)


def parse_quote(raw: bytes) -> Quote:
    """The quote's fields, or EvidenceRefused("format") for anything but the exact layout."""
    r = _Reader(raw)
    version, key_type, tee = struct.unpack("<HHI", r.take(8))
    r.take(HEADER_LEN - 8)
    if key_type != _ECDSA_P256:
        raise EvidenceRefused("format", "quote attestation key is not ecdsa p-256")
    if (version, tee) == (3, TeeType.SGX) or (version, tee) == (4, TeeType.SGX):
        body = r.take(SGX_REPORT_LEN)
    elif (version, tee) == (4, TeeType.TDX):
        body = r.take(TD_REPORT_LEN)
    else:
        raise EvidenceRefused("format", f"unsupported quote version {version} tee type {tee:#x}")
    signed = raw[: r.pos]
    sig = _Reader(r.take(r.u32()))
    if any(r.rest()):
        raise EvidenceRefused("format", "quote has non-zero bytes after its signature data")
    signature, attestation_key = sig.take(64), sig.take(64)
    if version == 4:
        _expect_type(sig.u16(), _CERT_QE_REPORT)
        sig = _Reader(sig.take(sig.u32()), whole=sig)
    qe_report, qe_sig = sig.take(SGX_REPORT_LEN), sig.take(64)
    qe_auth = sig.take(sig.u16())
    _expect_type(sig.u16(), _CERT_PCK_CHAIN)
    pem = sig.take(sig.u32())
    sig.done()
    return Quote(
        version=version,
        tee_type=TeeType(tee),
        signed=signed,
        body=body,
        signature=signature,
        attestation_key=attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_sig,
        qe_auth_data=qe_auth,
        pck_chain=canonical_pem_chain(pem.rstrip(b"\0"), "pck chain"),
    )


def verify_quote_signatures(quote: Quote) -> None:
    """The quote's own chain: quote signature <- attestation key <- QE report <- PCK leaf key."""
    if not verify_p256(
        ec_key(quote.pck_chain[0], "pck certificate"), quote.qe_report_signature, quote.qe_report
    ):
        raise EvidenceRefused("signature", "qe report signature is invalid")
    bound = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest() + bytes(32)
    if not hmac.compare_digest(quote.qe_report[320:384], bound):
        raise EvidenceRefused("signature", "qe report does not bind the attestation key")
    try:
        ak = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + quote.attestation_key
        )
    except ValueError as e:
        raise EvidenceRefused("signature", "attestation key is not a p-256 point") from e
    if not verify_p256(ak, quote.signature, quote.signed):
        raise EvidenceRefused("signature", "quote signature is invalid")


def verify_p256(key: ec.EllipticCurvePublicKey, raw_sig: bytes, data: bytes) -> bool:
    """Whether ``raw_sig`` (r||s, 32 B each) is a valid ECDSA-SHA256 signature of ``data``."""
    if len(raw_sig) != 64 or not isinstance(key.curve, ec.SECP256R1):
        return False
    der = encode_dss_signature(int.from_bytes(raw_sig[:32]), int.from_bytes(raw_sig[32:]))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def ec_key(cert: x509.Certificate, what: str) -> ec.EllipticCurvePublicKey:
    """The certificate's ECDSA public key, or EvidenceRefused("chain")."""
    try:
        key = cert.public_key()
    except ValueError as e:
        raise EvidenceRefused("chain", f"{what} key does not parse") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise EvidenceRefused("chain", f"{what} key is not an ecdsa key")
    return key


def canonical_pem_chain(pem: bytes, what: str) -> tuple[x509.Certificate, ...]:
    """The certificates of ``pem``, refused unless it is exactly their canonical PEM."""
    try:
        certs = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as e:
        raise EvidenceRefused("format", f"{what} is not a pem certificate chain") from e
    if b"".join(c.public_bytes(Encoding.PEM) for c in certs) != pem:
        raise EvidenceRefused("format", f"{what} is not canonical pem")
    return certs


def _expect_type(actual: int, expected: int) -> None:
    if actual != expected:
        raise EvidenceRefused("format", f"certification data type {actual} is not {expected}")


class _Reader:
    """Bounds-checked cursor; a short read is a format refusal, never an IndexError."""

    def __init__(self, data: bytes, whole: _Reader | None = None) -> None:
        self._data = data
        self.pos = 0
        if whole is not None:  # a nested region must end where its parent ends
            whole.done()

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self._data):
            raise EvidenceRefused("format", "quote is truncated")
        self.pos += n
        return self._data[self.pos - n : self.pos]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def rest(self) -> bytes:
        return self.take(len(self._data) - self.pos)

    def done(self) -> None:
        if self.pos != len(self._data):
            raise EvidenceRefused("format", "quote has bytes beyond a declared length")
