"""AMD SEV-SNP verifier: a report signed by its chip's VCEK, the VCEK chained to a pinned AMD root.

Evidence encoding (platform ``sev-snp``): the 1184-byte attestation report
exactly as the guest firmware returned it, immediately followed by the chip's
VCEK certificate in DER (as AMD's KDS serves it), nothing after it. The report
has a fixed size, so no framing is needed (:func:`encode_evidence`). The ASK
and ARK never travel with the evidence.

Rules:
- Roots are pinned per product in ``tee/roots/amd_<product>_ask_ark.pem``
  (ASK then ARK). The product is ``policy.options["product"]``, else the VCEK
  issuer's CN (``SEV-Milan`` -> ``milan``); the VCEK must be issued by that
  product's pinned ASK, so nothing in the evidence can bring its own root.
- Every certificate signature is RSASSA-PSS, SHA-384, MGF1-SHA-384, 48-byte
  salt, whatever the certificate claims; the VCEK's unsigned outer algorithm
  identifier must repeat the signed one, so no byte of the VCEK may vary.
  ARK, ASK and VCEK must all be valid at ``now``.
- The VCEK binds one chip at one TCB: extensions 1.3.6.1.4.1.3704.1.3.{1,2,3,8}
  (boot loader, TEE, SNP, microcode SPL; DER INTEGERs) equal REPORTED_TCB
  bytes 0, 1, 6, 7 and 1.3.6.1.4.1.3704.1.4 (hwID, 64 raw bytes) equals CHIP_ID.
- The report signature is checked before any report field decides anything.
  Then: debug (guest policy bit 19) refused unless ``allow_debug``; VMPL at
  most ``max_vmpl`` (default 0); ``report_data`` equal to the expected one
  (constant time); the policy's measurements; TCB status ``OutOfDate`` when a
  reported component is below ``min_tcb``, refused unless accepted.
- SEV-SNP has no nonce or public-key field: expecting either is refused (the
  caller folds them into report_data). Unknown option keys are refused.

Refusals name one check: policy, format, root, chain, window, vcek,
signature, debug, vmpl, report_data, nonce, public_key, measurement, tcb.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import ClassVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from tee.attestation import Claims, Expectation, Platform, Policy, check_binding, check_measurements
from tee.errors import EvidenceRefused, TeeError
from tee.snp_report import REPORT_SIZE, SnpReport, Tcb, parse_report

PRODUCTS = ("milan", "genoa")
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
_TCB_OIDS = {
    "bootloader": x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.1"),
    "tee": x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.2"),
    "snp": x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.3"),
    "microcode": x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.3.8"),
}
_HWID_OID = x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4")
_OPTION_KEYS = frozenset({"product", "max_vmpl", "min_tcb"})


@dataclass(frozen=True, slots=True)
class SnpOptions:
    """The SEV-SNP knobs of ``Policy.options``, validated."""

    product: str | None = None  # "milan" | "genoa"; None: from the VCEK issuer
    max_vmpl: int = 0  # highest VMPL accepted (0: only the most privileged)
    min_tcb: Mapping[str, int] = field(default_factory=dict)  # component -> minimum SPL

    @classmethod
    def parse(cls, options: Mapping[str, object]) -> SnpOptions:
        """The options, or EvidenceRefused("policy") naming what is wrong."""
        unknown = sorted(set(options) - _OPTION_KEYS)
        if unknown:
            raise EvidenceRefused("policy", f"sev-snp: unknown options {unknown}")
        product = options.get("product")
        if product is not None and product not in PRODUCTS:
            raise EvidenceRefused("policy", f"sev-snp: product must be one of {list(PRODUCTS)}")
        max_vmpl = _small_int(options.get("max_vmpl", 0), "max_vmpl", 3)
        min_tcb = options.get("min_tcb", {})
        if not isinstance(min_tcb, Mapping):
            raise EvidenceRefused("policy", "sev-snp: min_tcb must be a mapping")
        unknown = sorted(set(min_tcb) - set(_TCB_OIDS))
        if unknown:
            raise EvidenceRefused("policy", f"sev-snp: unknown min_tcb components {unknown}")
        minimums = {str(k): _small_int(v, f"min_tcb.{k}", 255) for k, v in min_tcb.items()}
        return cls(product=product, max_vmpl=max_vmpl, min_tcb=minimums)


def _small_int(value: object, name: str, top: int) -> int:
    if type(value) is not int or not 0 <= value <= top:
        raise EvidenceRefused("policy", f"sev-snp: {name} must be an integer in 0..{top}")
    return value


@dataclass(frozen=True, slots=True)
class AmdRoots:
    """One product's pinned ARK (self-signed root) and ASK (the VCEK issuer), checked once."""

    product: str
    ark: x509.Certificate
    ask: x509.Certificate

    @classmethod
    def from_pem(cls, product: str, pem: bytes) -> AmdRoots:
        """The chain from a PEM holding the ASK then the ARK; TeeError if it does not chain."""
        try:
            certs = x509.load_pem_x509_certificates(pem)
        except ValueError as e:
            raise TeeError(f"sev-snp: {product} roots are not pem certificates") from e
        if len(certs) != 2:
            raise TeeError(f"sev-snp: {product} roots must hold the ask then the ark")
        ask, ark = certs
        if not (_is_rsa4096_ca(ark) and _is_rsa4096_ca(ask)):
            raise TeeError(f"sev-snp: {product} roots must be rsa-4096 certificate authorities")
        if not (_signed_by(ark, ark) and _signed_by(ask, ark)):
            raise TeeError(f"sev-snp: {product} ask is not signed by a self-signed ark")
        return cls(product=product, ark=ark, ask=ask)

    @classmethod
    def pinned(cls, product: str) -> AmdRoots:
        """The chain committed in the package for ``product``."""
        pem = resources.files("tee").joinpath(f"roots/amd_{product}_ask_ark.pem").read_bytes()
        return cls.from_pem(product, pem)


def _is_rsa4096_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    key = cert.public_key()
    return constraints.ca and isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096


def encode_evidence(report: bytes, vcek_der: bytes) -> bytes:
    """Evidence for :class:`SevSnpVerifier`: the raw report, then the VCEK in DER."""
    if len(report) != REPORT_SIZE:
        raise ValueError(f"sev-snp: a report is {REPORT_SIZE} bytes")
    return report + vcek_der


class SevSnpVerifier:
    """Verifies ``report || VCEK`` evidence against the AMD roots pinned per product."""

    platform: ClassVar[Platform] = Platform.SEV_SNP

    def __init__(self, *, roots: Mapping[str, AmdRoots] | None = None) -> None:
        """Pinned package roots by default; tests hand in their own chain."""
        if roots is None:
            roots = {product: AmdRoots.pinned(product) for product in PRODUCTS}
        if any(chain.product != product for product, chain in roots.items()):
            raise ValueError("sev-snp: roots must be keyed by their own product")
        self._roots = dict(roots)

    def verify(
        self, evidence: bytes, *, expect: Expectation, now: datetime, policy: Policy
    ) -> Claims:
        """The report's claims, or EvidenceRefused naming the failed check."""
        options = SnpOptions.parse(policy.options)
        # Reports have no nonce or key field: callers bind them in report_data.
        check_binding("nonce", expect.nonce, None)
        check_binding("public_key", expect.public_key, None)
        if now.tzinfo is None:
            raise EvidenceRefused("window", "sev-snp: the clock must be timezone-aware")
        report, vcek = _split(evidence)
        roots = self._roots_for(options.product, vcek)
        _check_chain(roots, vcek, now)
        _check_vcek_binding(vcek, report)
        _check_signature(vcek, report)
        return _check_policy(report, roots.product, expect, policy, options)

    def _roots_for(self, product: str | None, vcek: x509.Certificate) -> AmdRoots:
        if product is None:
            names = vcek.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
            issuer = str(names[0].value) if len(names) == 1 else ""
            product = issuer.removeprefix("SEV-").lower() if issuer.startswith("SEV-") else ""
        roots = self._roots.get(product)
        if roots is None:
            raise EvidenceRefused("root", "sev-snp: no pinned root for the vcek's product")
        return roots


# What pyca raises on malformed certificates: some fields are parsed only when first read.
_MALFORMED = (
    ValueError,
    KeyError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
)


def _split(evidence: bytes) -> tuple[SnpReport, x509.Certificate]:
    """The report and the VCEK, every VCEK field parsed now so later reads cannot fail."""
    report = parse_report(evidence[:REPORT_SIZE])
    try:
        vcek = x509.load_der_x509_certificate(evidence[REPORT_SIZE:])
        _ = (vcek.issuer, vcek.subject, vcek.extensions, vcek.public_key())
    except _MALFORMED as e:
        raise EvidenceRefused("format", "sev-snp: the vcek is not one valid der certificate") from e
    return report, vcek


def _check_chain(roots: AmdRoots, vcek: x509.Certificate, now: datetime) -> None:
    if vcek.issuer != roots.ask.subject:
        raise EvidenceRefused(
            "root", f"sev-snp: the vcek is not issued by the pinned {roots.product} ask"
        )
    if not _signed_by(vcek, roots.ask):
        raise EvidenceRefused("chain", "sev-snp: the vcek signature does not verify")
    for name, cert in (("ark", roots.ark), ("ask", roots.ask), ("vcek", vcek)):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise EvidenceRefused("window", f"sev-snp: the {name} is not valid at this time")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``cert`` carries a valid RSASSA-PSS/SHA-384 signature of ``issuer`` over all it holds."""
    key = issuer.public_key()
    if (
        cert.issuer != issuer.subject
        or cert.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS
        or not isinstance(key, rsa.RSAPublicKey)
        or not _outer_algorithm_is_signed(cert)
    ):
        return False
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes, _PSS, hashes.SHA384())
    except InvalidSignature:
        return False
    return True


def _outer_algorithm_is_signed(cert: x509.Certificate) -> bool:
    """The unsigned outer AlgorithmIdentifier is byte-equal to the signed one (RFC 5280 4.1.1.2)."""
    der = cert.public_bytes(Encoding.DER)  # already parsed as strict DER: offsets are sound
    tbs = _content(der, 0)
    outer = der[_end(der, tbs) : _end(der, _end(der, tbs))]
    pos = _content(der, tbs)
    if der[pos] == 0xA0:  # [0] version
        pos = _end(der, pos)
    pos = _end(der, pos)  # serialNumber
    return der[pos : _end(der, pos)] == outer


def _content(der: bytes, off: int) -> int:
    """Offset of the content of the DER element at ``off``."""
    size = der[off + 1]
    return off + 2 + (size & 0x7F if size & 0x80 else 0)


def _end(der: bytes, off: int) -> int:
    """Offset just past the DER element at ``off``."""
    size, start = der[off + 1], _content(der, off)
    length = int.from_bytes(der[off + 2 : start], "big") if size & 0x80 else size
    return start + length


def _check_vcek_binding(vcek: x509.Certificate, report: SnpReport) -> None:
    """The VCEK was issued for this chip at the TCB the report states."""
    values: dict[x509.ObjectIdentifier, bytes] = {
        ext.oid: ext.value.value
        for ext in vcek.extensions
        if isinstance(ext.value, x509.UnrecognizedExtension)
    }
    reported = report.reported_tcb.components()
    for component, oid in _TCB_OIDS.items():
        if values.get(oid) != _der_integer(reported[component]):
            raise EvidenceRefused("vcek", f"sev-snp: vcek {component} spl differs from the report")
    hwid = values.get(_HWID_OID)
    if hwid is None or not hmac.compare_digest(hwid, report.chip_id):
        raise EvidenceRefused("vcek", "sev-snp: vcek hwid differs from the report's chip id")


def _der_integer(value: int) -> bytes:
    """DER INTEGER of 0..255 (a leading zero keeps 0x80..0xFF positive)."""
    body = value.to_bytes(2 if value >= 0x80 else 1, "big")
    return bytes([0x02, len(body)]) + body


def _check_signature(vcek: x509.Certificate, report: SnpReport) -> None:
    key = vcek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise EvidenceRefused("vcek", "sev-snp: the vcek key is not ecdsa p-384")
    try:
        key.verify(
            encode_dss_signature(report.r, report.s), report.signed, ec.ECDSA(hashes.SHA384())
        )
    except InvalidSignature as e:
        raise EvidenceRefused("signature", "sev-snp: the report signature does not verify") from e


def _check_policy(
    report: SnpReport, product: str, expect: Expectation, policy: Policy, options: SnpOptions
) -> Claims:
    """The claims of a signed report, once the caller's policy accepts them."""
    if report.debug and not policy.allow_debug:
        raise EvidenceRefused("debug", "sev-snp: the guest policy allows debugging")
    if report.vmpl > options.max_vmpl:
        raise EvidenceRefused("vmpl", f"sev-snp: vmpl {report.vmpl} above {options.max_vmpl}")
    check_binding("report_data", expect.report_data, report.report_data)
    measurements = {"measurement": report.measurement.hex()}
    check_measurements(measurements, policy)
    status = _tcb_status(report.reported_tcb, options.min_tcb)
    if status not in policy.accepted_tcb:
        raise EvidenceRefused("tcb", f"sev-snp: reported tcb ({report.reported_tcb}) is {status}")
    return Claims(
        platform=Platform.SEV_SNP,
        measurements=measurements,
        report_data=report.report_data,
        public_key=None,
        nonce=None,
        tcb_status=status,
        debug=report.debug,
        details=_details(report, product),
    )


def _tcb_status(reported: Tcb, minimums: Mapping[str, int]) -> str:
    components = reported.components()
    below = any(components[name] < least for name, least in minimums.items())
    return "OutOfDate" if below else "UpToDate"


def _details(report: SnpReport, product: str) -> dict[str, str]:
    return {
        "product": product,
        "version": str(report.version),
        "guest_svn": str(report.guest_svn),
        "policy": f"{report.policy:#x}",
        "vmpl": str(report.vmpl),
        "reported_tcb": report.reported_tcb.raw.hex(),
        "host_data": report.host_data.hex(),
        "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(),
        "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(),
        "chip_id": report.chip_id.hex(),
    }
