"""AWS Nitro Enclaves attestation documents: COSE_Sign1 evidence -> claims.

Rules (each failure raises ``EvidenceRefused`` naming the check):
- ``format``: the envelope (:mod:`tee.cose`) and the payload
  (:mod:`tee.nitro_document`) follow the AWS NSM specification; certificates
  are DER with a positive serial number (RFC 5280).
- ``root``: the bundle's first certificate is byte-for-byte the pinned root, and
  the chain is built ONLY to the pinned root, never to one the document
  supplies: the packaged AWS Nitro root G1 (checked against its SHA-256 at
  construction) or the ``root_pem`` handed to the constructor.
- ``window``: ``now`` lies inside every certificate's validity; the document's
  timestamp lies inside the leaf's validity (the leaf is issued for the
  document and lives ~3 hours) and at most ``max_clock_skew`` after ``now``;
  with the policy option ``max_age_seconds`` it is also no older than that.
- ``chain``: leaf -> cabundle -> pinned root at ``now`` (pyca X.509, web-PKI CA
  rules); the leaf holds a P-384 key with keyUsage digitalSignature.
- ``signature``: ES384 over the COSE Sig_structure with the leaf's key.
- ``debug``: PCR0, PCR1 and PCR2 all zero is a debug-mode enclave (the host can
  read its memory): refused unless ``policy.allow_debug``.
- ``tcb``: Nitro has no TCB version; the claim is ``UpToDate`` and must be
  accepted by the policy.
- ``nonce`` / ``public_key`` / ``report_data`` (user_data): compared in
  constant time when expected; an expected field the document lacks is refused.
- ``measurement``: ``policy.measurements`` over ``pcr0``..``pcr31`` (lowercase hex).
- ``policy``: an unknown ``policy.options`` key or a bad value.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from importlib import resources
from typing import ClassVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store

from tee.attestation import Claims, Expectation, Platform, Policy, check_binding, check_measurements
from tee.cose import decode_sign1, loads_exact, verify_es384
from tee.errors import EvidenceRefused, TeeError
from tee.nitro_document import NitroDocument, parse_document
from tokengate.errors import ConfigError

# AWS publishes this root at https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip;
# the packaged copy (tee/roots/aws_nitro_root_g1.pem) must hash to this (DER, SHA-256).
AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
_ROOT_RESOURCE = "roots/aws_nitro_root_g1.pem"
MAX_EVIDENCE_BYTES = 32 * 1024  # a full document with every optional field is ~16.5 KiB
_DEBUG_PCRS = frozenset({0, 1, 2})
_OPTIONS = frozenset({"max_age_seconds"})
SKEW = timedelta(seconds=60)  # default: how far a document's timestamp may run ahead of ours


def load_packaged_root() -> x509.Certificate:
    """The AWS Nitro root G1 shipped with the package, refused if its hash is not the pinned one."""
    pem = resources.files("tee").joinpath(_ROOT_RESOURCE).read_bytes()
    root = x509.load_pem_x509_certificate(pem)
    digest = hashlib.sha256(root.public_bytes(Encoding.DER)).hexdigest()
    if digest != AWS_NITRO_ROOT_G1_SHA256:
        raise TeeError("nitro: packaged root does not match its pinned sha-256")
    return root


class NitroVerifier:
    """Verifies AWS Nitro attestation documents against one pinned root."""

    platform: ClassVar[Platform] = Platform.NITRO

    def __init__(self, *, root_pem: bytes | None = None, max_clock_skew: timedelta = SKEW) -> None:
        """Pin ``root_pem`` (default: the packaged AWS Nitro root G1).

        ``max_clock_skew`` bounds how far a document's timestamp may lie after
        ``now`` (the enclave's clock and ours differ a little).
        """
        if root_pem is None:
            root = load_packaged_root()
        else:
            try:
                root = x509.load_pem_x509_certificate(root_pem)
            except ValueError as e:
                raise ConfigError("nitro: root_pem is not a pem certificate") from e
        if max_clock_skew < timedelta(0):
            raise ConfigError("nitro: max_clock_skew must not be negative")
        self._root = root
        self._root_der = root.public_bytes(Encoding.DER)
        self._skew = max_clock_skew

    def verify(
        self, evidence: bytes, *, expect: Expectation, now: datetime, policy: Policy
    ) -> Claims:
        """The document's claims, or EvidenceRefused naming the failed check."""
        if now.tzinfo is None:
            raise ValueError("nitro: now must be timezone-aware")
        max_age = _max_age(policy)
        if len(evidence) > MAX_EVIDENCE_BYTES:
            raise EvidenceRefused("format", "document is too large")
        message = decode_sign1(evidence)
        doc = parse_document(loads_exact(message.payload, "nitro payload"))
        leaf, bundle = self._check_chain(doc, now)
        verify_es384(message, _leaf_key(leaf))  # parsed and checked once already: cannot fail
        self._check_timestamp(doc, leaf, now, max_age)
        measurements = {f"pcr{i}": value.hex() for i, value in sorted(doc.pcrs.items())}
        debug = _is_debug(doc.pcrs)
        if debug and not policy.allow_debug:
            raise EvidenceRefused("debug", "enclave runs in debug mode")
        if "UpToDate" not in policy.accepted_tcb:
            raise EvidenceRefused("tcb", "UpToDate is not an accepted tcb status")
        _check_bindings(doc, expect)
        check_measurements(measurements, policy)
        return Claims(
            platform=Platform.NITRO,
            measurements=measurements,
            report_data=doc.user_data or b"",
            public_key=doc.public_key,
            nonce=doc.nonce,
            tcb_status="UpToDate",
            debug=debug,
            issued_at=doc.issued_at,
            details={
                "module_id": doc.module_id,
                "leaf": leaf.subject.rfc4514_string(),
                "bundle": "; ".join(c.subject.rfc4514_string() for c in bundle),
                "root_sha256": hashlib.sha256(self._root_der).hexdigest(),
            },
        )

    def _check_chain(
        self, doc: NitroDocument, now: datetime
    ) -> tuple[x509.Certificate, list[x509.Certificate]]:
        """Leaf -> bundle -> pinned root at ``now``; the leaf and the intermediates, root first."""
        if not hmac.compare_digest(doc.cabundle[0], self._root_der):
            raise EvidenceRefused("root", "bundle root is not the pinned root")
        try:
            leaf = x509.load_der_x509_certificate(doc.certificate)
            intermediates = [x509.load_der_x509_certificate(der) for der in doc.cabundle[1:]]
        # A non-positive serial only warns (an exception where warnings are errors).
        except (ValueError, x509.InvalidVersion, CryptographyDeprecationWarning) as e:
            raise EvidenceRefused("format", "a certificate is not der") from e
        if any(cert.serial_number <= 0 for cert in [leaf, *intermediates]):
            raise EvidenceRefused("format", "a certificate serial number is not positive")
        for cert in [leaf, *intermediates, self._root]:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise EvidenceRefused("window", "a certificate is not valid at this time")
        _leaf_key(leaf)
        verifier = (
            PolicyBuilder()
            .store(Store([self._root]))
            .time(now)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except (x509.verification.VerificationError, ValueError, UnsupportedAlgorithm) as e:
            raise EvidenceRefused("chain", "certificate chain does not verify") from e
        return leaf, intermediates

    def _check_timestamp(
        self, doc: NitroDocument, leaf: x509.Certificate, now: datetime, age: timedelta | None
    ) -> None:
        """The document was made while its leaf was valid, not in our future, not too long ago."""
        at = doc.issued_at
        if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
            raise EvidenceRefused("window", "timestamp is outside the leaf's validity")
        if at > now + self._skew:
            raise EvidenceRefused("window", "timestamp is in the future")
        if age is not None and at < now - age:
            raise EvidenceRefused("window", "document is older than max_age_seconds")


def _leaf_key(leaf: x509.Certificate) -> ec.EllipticCurvePublicKey:
    """The signing certificate's key: P-384, and keyUsage lets it sign."""
    try:  # certificates parse lazily: a bad key or extension shows up only here
        key = leaf.public_key()
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as e:
        raise EvidenceRefused("chain", "leaf has no key usage") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise EvidenceRefused("format", "leaf certificate is malformed") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise EvidenceRefused("chain", "leaf key is not p-384")
    if not usage.digital_signature:
        raise EvidenceRefused("chain", "leaf may not sign")
    return key


def _is_debug(pcrs: dict[int, bytes]) -> bool:
    """Debug-mode enclaves report PCR0, PCR1 and PCR2 as all zeros."""
    if not pcrs.keys() >= _DEBUG_PCRS:
        raise EvidenceRefused("format", "pcr0, pcr1 or pcr2 is missing")
    return not any(any(pcrs[i]) for i in _DEBUG_PCRS)


def _check_bindings(doc: NitroDocument, expect: Expectation) -> None:
    """Every expected binding is present and equal (constant time)."""
    check_binding("nonce", expect.nonce, doc.nonce)
    check_binding("public_key", expect.public_key, doc.public_key)
    check_binding("report_data", expect.report_data, doc.user_data)


def _max_age(policy: Policy) -> timedelta | None:
    """The ``max_age_seconds`` option as a timedelta; other options are refused."""
    unknown = set(policy.options) - _OPTIONS
    if unknown:
        raise EvidenceRefused("policy", f"unknown nitro options: {', '.join(sorted(unknown))}")
    value = policy.options.get("max_age_seconds")
    if value is None:
        return None
    if type(value) is not int or value <= 0:
        raise EvidenceRefused("policy", "max_age_seconds must be a positive integer")
    return timedelta(seconds=value)
