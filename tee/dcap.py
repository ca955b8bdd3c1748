"""Intel TDX and SGX (DCAP) verifiers: a quote plus its collateral -> claims.

Evidence (``tokengate-dcap-evidence/1``) is canonical JSON (sorted keys, no
spaces, ASCII) of ``{"collateral": {...}, "format": ..., "quote": base64}``;
``collateral`` holds exactly what a PCCS returns, in dcap-qvl's
``QuoteCollateralV3`` JSON: ``pck_crl_issuer_chain``, ``tcb_info_issuer_chain``,
``qe_identity_issuer_chain`` (canonical PEM), ``root_ca_crl``, ``pck_crl`` (DER as
lowercase hex), ``tcb_info``, ``qe_identity`` (the signed JSON text) and
``tcb_info_signature``, ``qe_identity_signature`` (r||s as lowercase hex). One
spelling only, so a flipped bit anywhere changes something that is checked.

Checks, all against the PINNED Intel SGX Root CA (``tee/roots``, SHA-256
fingerprint checked on load) and the injected ``now``:
- our code: the quote's layout and own signature chain (:mod:`tee.dcap_quote`);
  every certificate chain (PCK, PCK CRL issuer, TCB signing) ends in exactly the
  pinned root and is valid at ``now``; TCB info and QE identity signatures by the
  TCB signing key; root CA CRL and PCK CRL signed by their issuers, current, and
  not revoking any certificate in use; TCB info and QE identity current;
- dcap-qvl (``verify_with_root_ca``, given our pinned root): the same chain,
  CRL and signature checks again, then the TCB level and QE identity matching
  that yields the TCB status and advisory ids;
- policy: status in ``policy.accepted_tcb`` (``Revoked`` never), REPORTDATA
  equal to ``expect.report_data`` (constant time), ``policy.measurements``.
  Quotes carry no nonce or key field: an expected ``nonce`` or ``public_key``
  is refused (fold them into report data).

Debug quotes (TDX TD attributes DEBUG, SGX ATTRIBUTES.DEBUG) are always refused,
even under ``policy.allow_debug``: dcap-qvl 0.7 refuses to evaluate the TCB of a
debug quote, and a quote without a TCB verdict is not accepted here.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.resources import files
from itertools import pairwise
from typing import ClassVar

import dcap_qvl  # type: ignore[import-untyped]  # ships stubs but no py.typed
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from tee.attestation import Claims, Expectation, Platform, Policy, check_binding, check_measurements
from tee.dcap_quote import (
    Quote,
    TeeType,
    canonical_pem_chain,
    ec_key,
    parse_quote,
    verify_p256,
    verify_quote_signatures,
)
from tee.errors import EvidenceRefused

FORMAT = "tokengate-dcap-evidence/1"
INTEL_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
MAX_EVIDENCE = 1 << 20
_CHAINS = ("pck_crl_issuer_chain", "tcb_info_issuer_chain", "qe_identity_issuer_chain")
_HEX = ("root_ca_crl", "pck_crl", "tcb_info_signature", "qe_identity_signature")
_COLLATERAL_KEYS = frozenset((*_CHAINS, *_HEX, "tcb_info", "qe_identity"))
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")


def load_intel_root() -> x509.Certificate:
    """The packaged Intel SGX Root CA, refused unless its fingerprint is the pinned one."""
    pem = files("tee").joinpath("roots/intel_sgx_root_ca.pem").read_bytes()
    root = x509.load_pem_x509_certificate(pem)
    if root.fingerprint(hashes.SHA256()).hex() != INTEL_ROOT_SHA256:
        raise EvidenceRefused("root", "packaged intel root does not have the pinned fingerprint")
    return root


def encode_evidence(quote: bytes, collateral: Mapping[str, str]) -> bytes:
    """DCAP evidence in its one canonical spelling (what a worker sends)."""
    doc = {"collateral": dict(collateral), "format": FORMAT, "quote": _b64(quote)}
    return _canonical(doc)


def check_chain(
    certs: Sequence[x509.Certificate], root: x509.Certificate, now: datetime, what: str
) -> None:
    """``certs`` (leaf first) ends in exactly ``root``, each issued by the next, all valid now."""
    if len(certs) < 2:
        raise EvidenceRefused("chain", f"{what} is too short")
    if certs[-1].public_bytes(Encoding.DER) != root.public_bytes(Encoding.DER):
        raise EvidenceRefused("root", f"{what} does not end in the pinned root")
    for cert in certs:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise EvidenceRefused("window", f"{what} has a certificate not valid now")
    for child, parent in pairwise(certs):
        try:
            ca = parent.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            child.verify_directly_issued_by(parent)
        except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature) as e:
            raise EvidenceRefused("chain", f"{what} is not a valid chain") from e
        if not ca:
            raise EvidenceRefused("chain", f"{what} has an issuer that is not a ca")


class _Collateral:
    """The collateral fields, decoded and checked for their one spelling."""

    def __init__(self, doc: object) -> None:
        if not isinstance(doc, dict) or set(doc) != _COLLATERAL_KEYS:
            raise EvidenceRefused("format", "collateral does not have exactly the dcap fields")
        if not all(isinstance(v, str) for v in doc.values()):
            raise EvidenceRefused("format", "collateral fields must be strings")
        self.doc: dict[str, str] = doc
        self.chains = {
            k: canonical_pem_chain(doc[k].encode(), k.replace("_", " ")) for k in _CHAINS
        }
        self.raw = {k: _hex(doc[k], k) for k in _HEX}
        self.tcb_info = _json_object(doc["tcb_info"], "tcb info")
        self.qe_identity = _json_object(doc["qe_identity"], "qe identity")

    def crl(self, name: str) -> x509.CertificateRevocationList:
        try:
            return x509.load_der_x509_crl(self.raw[name])
        except ValueError as e:
            raise EvidenceRefused("format", f"{name.replace('_', ' ')} is not a der crl") from e


def verify_collateral(
    coll: _Collateral, quote: Quote, root: x509.Certificate, now: datetime
) -> None:
    """Collateral signatures, CRLs and windows, all to the pinned root (our own code)."""
    for name, certs in coll.chains.items():
        check_chain(certs, root, now, name.replace("_", " "))
    for what, signed, sig, chain in (
        ("tcb info", "tcb_info", "tcb_info_signature", "tcb_info_issuer_chain"),
        ("qe identity", "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain"),
    ):
        key = ec_key(coll.chains[chain][0], what + " signer")
        if not verify_p256(key, coll.raw[sig], coll.doc[signed].encode()):
            raise EvidenceRefused("collateral", f"{what} signature is invalid")
        doc = coll.tcb_info if signed == "tcb_info" else coll.qe_identity
        if not _date(doc, "issueDate", what) <= now < _date(doc, "nextUpdate", what):
            raise EvidenceRefused("window", f"{what} is not current")
    root_crl = _checked_crl(coll.crl("root_ca_crl"), root, now, "root ca crl")
    pck_crl = _checked_crl(coll.crl("pck_crl"), quote.pck_chain[1], now, "pck crl")
    in_use = [c for chain in (quote.pck_chain, *coll.chains.values()) for c in chain[1:-1]]
    in_use += [coll.chains[k][0] for k in ("tcb_info_issuer_chain", "qe_identity_issuer_chain")]
    for cert in in_use:
        if root_crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise EvidenceRefused("revoked", "a certificate in use is revoked by the root ca crl")
    if pck_crl.get_revoked_certificate_by_serial_number(quote.pck_chain[0].serial_number):
        raise EvidenceRefused("revoked", "the pck certificate is revoked")


class _DcapVerifier:
    """Shared verification; subclasses fix the platform and the quote's tee type."""

    platform: ClassVar[Platform]
    tee_type: ClassVar[TeeType]

    def __init__(self, *, root: x509.Certificate | None = None) -> None:
        """``root`` defaults to the packaged, fingerprint-checked Intel SGX Root CA."""
        self._root = root if root is not None else load_intel_root()
        self._root_der = self._root.public_bytes(Encoding.DER)

    def verify(
        self, evidence: bytes, *, expect: Expectation, now: datetime, policy: Policy
    ) -> Claims:
        """The quote's claims, or EvidenceRefused naming the failed check."""
        if now.tzinfo is None:
            raise ValueError("dcap: now must be timezone-aware")
        now = now.astimezone(UTC)
        if policy.options:
            raise EvidenceRefused("policy", "dcap verifiers take no platform options")
        raw, coll = _decode(evidence)
        quote = parse_quote(raw)
        if quote.tee_type is not self.tee_type:
            raise EvidenceRefused("platform", f"quote is not a {self.platform.value} quote")
        verify_quote_signatures(quote)
        check_chain(quote.pck_chain, self._root, now, "pck chain")
        verify_collateral(coll, quote, self._root, now)
        if quote.debug:  # dcap-qvl refuses debug quotes outright, so allow_debug cannot help
            raise EvidenceRefused("debug", f"the {self.platform.value} quote is in debug mode")
        report = self._evaluate(raw, coll, now)
        return self._claims(quote, report, expect, policy)

    def _evaluate(self, raw: bytes, coll: _Collateral, now: datetime) -> dict[str, object]:
        """dcap-qvl's verdict against our pinned root: TCB status, advisories, report."""
        try:
            collateral = dcap_qvl.QuoteCollateralV3.from_json(json.dumps(coll.doc))
            result = dcap_qvl.verify_with_root_ca(
                raw, collateral, self._root_der, int(now.timestamp())
            )
            report: object = json.loads(result.to_json())
        except (ValueError, RuntimeError, TypeError) as e:
            reason = str(e).splitlines()[0][:120].lower()
            raise EvidenceRefused("collateral", f"dcap-qvl refused the quote: {reason}") from e
        if not isinstance(report, dict):
            raise EvidenceRefused("collateral", "dcap-qvl returned no report")
        return report

    def _claims(
        self, quote: Quote, report: Mapping[str, object], expect: Expectation, policy: Policy
    ) -> Claims:
        status = report.get("status")
        advisories = report.get("advisory_ids")
        if not isinstance(status, str) or not isinstance(advisories, list):
            raise EvidenceRefused("collateral", "dcap-qvl returned no tcb status")
        if status == "Revoked" or status not in policy.accepted_tcb:
            raise EvidenceRefused("tcb", f"tcb status {status} is not accepted")
        if _report_data_of(report) != quote.report_data.hex():
            raise EvidenceRefused("format", "dcap-qvl and tokengate parse the quote differently")
        # Quotes carry no nonce or key field: callers fold them into report_data.
        check_binding("nonce", expect.nonce, None)
        check_binding("public_key", expect.public_key, None)
        check_binding("report_data", expect.report_data, quote.report_data)
        measurements = quote.measurements()
        check_measurements(measurements, policy)
        return Claims(
            platform=self.platform,
            measurements=measurements,
            report_data=quote.report_data,
            public_key=None,
            nonce=None,
            tcb_status=status,
            debug=False,
            details={
                "advisory_ids": ",".join(str(a) for a in advisories),
                "qe_tcb_status": _status_of(report, "qe_status"),
                "platform_tcb_status": _status_of(report, "platform_status"),
                "pck_subject": quote.pck_chain[0].subject.rfc4514_string(),
            },
        )


class TdxVerifier(_DcapVerifier):
    """Intel TDX quotes (v4, TD report 1.0)."""

    platform: ClassVar[Platform] = Platform.TDX
    tee_type: ClassVar[TeeType] = TeeType.TDX


class SgxVerifier(_DcapVerifier):
    """Intel SGX quotes (v3, or v4 with tee type SGX)."""

    platform: ClassVar[Platform] = Platform.SGX
    tee_type: ClassVar[TeeType] = TeeType.SGX


def _decode(evidence: bytes) -> tuple[bytes, _Collateral]:
    if len(evidence) > MAX_EVIDENCE:
        raise EvidenceRefused("format", "dcap evidence is too large")
    try:
        doc = json.loads(evidence)
    except ValueError as e:
        raise EvidenceRefused("format", "dcap evidence is not json") from e
    if not isinstance(doc, dict) or set(doc) != {"collateral", "format", "quote"}:
        raise EvidenceRefused("format", f"not {FORMAT} evidence")
    if doc["format"] != FORMAT or _canonical(doc) != evidence:
        raise EvidenceRefused("format", f"not canonical {FORMAT} evidence")
    quote = doc["quote"]
    try:
        raw = base64.b64decode(quote, validate=True) if isinstance(quote, str) else b""
    except ValueError as e:
        raise EvidenceRefused("format", "quote is not base64") from e
    if not raw or _b64(raw) != quote:
        raise EvidenceRefused("format", "quote is not canonical base64")
    return raw, _Collateral(doc["collateral"])


def _checked_crl(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, now: datetime, what: str
) -> x509.CertificateRevocationList:
    if crl.issuer != issuer.subject:
        raise EvidenceRefused("collateral", f"{what} is not issued by its ca")
    if not crl.is_signature_valid(ec_key(issuer, what + " issuer")):
        raise EvidenceRefused("collateral", f"{what} signature is invalid")
    nxt = crl.next_update_utc
    if nxt is None or not crl.last_update_utc <= now < nxt:
        raise EvidenceRefused("window", f"{what} is not current")
    return crl


def _report_data_of(report: Mapping[str, object]) -> object:
    body = report.get("report")
    inner = next(iter(body.values()), None) if isinstance(body, dict) and len(body) == 1 else None
    return inner.get("report_data") if isinstance(inner, dict) else None


def _status_of(report: Mapping[str, object], name: str) -> str:
    part = report.get(name)
    status = part.get("status") if isinstance(part, dict) else None
    return status if isinstance(status, str) else ""


def _date(doc: Mapping[str, object], name: str, what: str) -> datetime:
    value = doc.get(name)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise EvidenceRefused("format", f"{what} {name} is not a utc time")
    return parsed


def _json_object(text: str, what: str) -> dict[str, object]:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise EvidenceRefused("format", f"{what} is not json") from e
    if not isinstance(doc, dict):
        raise EvidenceRefused("format", f"{what} is not a json object")
    return doc


def _hex(value: str, name: str) -> bytes:
    if not _LOWER_HEX.fullmatch(value):
        raise EvidenceRefused("format", f"{name.replace('_', ' ')} is not lowercase hex")
    return bytes.fromhex(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
