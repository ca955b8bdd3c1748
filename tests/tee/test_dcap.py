"""Intel TDX and SGX (DCAP) verifiers against real quotes and collateral (clock pinned).

Besides the real samples, a "forged world" rebuilds the whole DCAP PKI under a
throwaway root (same subjects and extensions as Intel's, fresh keys): it is
accepted only by a verifier pinned to that throwaway root, which lets the tests
reach the debug and wrong-root checks with quotes whose every other check passes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tee.attestation import Expectation, Platform, Policy
from tee.dcap import SgxVerifier, TdxVerifier, check_chain, encode_evidence, load_intel_root
from tee.dcap_quote import Quote, parse_quote, verify_p256, verify_quote_signatures
from tee.errors import EvidenceRefused

V = Path(__file__).parent / "vectors" / "tdx-sgx"
TDX_QUOTE = (V / "dcapqvl_tdx_quote_v4.bin").read_bytes()
SGX_QUOTE = (V / "dcapqvl_sgx_quote_v3.bin").read_bytes()
TDX_COLL: dict[str, str] = json.loads((V / "dcapqvl_tdx_quote_collateral.json").read_text())
SGX_COLL: dict[str, str] = json.loads((V / "dcapqvl_sgx_quote_collateral.json").read_text())
# Windows [start, end): the end is exclusive (a CRL or identity at its nextUpdate is stale).
TDX_START = datetime(2025, 6, 19, 10, 32, 27, tzinfo=UTC)
TDX_END = datetime(2025, 7, 19, 10, 0, 35, tzinfo=UTC)
SGX_START = datetime(2025, 6, 19, 10, 56, 11, tzinfo=UTC)
SGX_END = datetime(2025, 7, 19, 10, 1, 18, tzinfo=UTC)
NOW = datetime(2025, 7, 1, tzinfo=UTC)
SGX_STATUS = "ConfigurationAndSWHardeningNeeded"
SGX_POLICY = Policy(accepted_tcb=frozenset({"UpToDate", SGX_STATUS}))
TDX_MRTD = (
    "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407"
    "de03ae6dc5f87f27428b2538873118b7"
)
SGX_MRENCLAVE = "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
NONE = Expectation()
TDX_EVIDENCE = encode_evidence(TDX_QUOTE, TDX_COLL)
SGX_EVIDENCE = encode_evidence(SGX_QUOTE, SGX_COLL)


def _refused(
    check: str | None, verifier: TdxVerifier | SgxVerifier, evidence: bytes, **kw: object
) -> None:
    args: dict[str, object] = {"expect": NONE, "now": NOW, "policy": Policy()} | kw
    with pytest.raises(EvidenceRefused) as info:
        verifier.verify(evidence, **args)  # type: ignore[arg-type]
    if check is not None:
        assert info.value.check == check, info.value


# --- the real samples --------------------------------------------------------------------


@pytest.mark.parametrize("now", [TDX_START, NOW, TDX_END - timedelta(seconds=1)])
def test_tdx_sample_verifies_up_to_date_inside_its_window(now: datetime) -> None:
    claims = TdxVerifier().verify(TDX_EVIDENCE, expect=NONE, now=now, policy=Policy())
    assert claims.platform is Platform.TDX
    assert claims.tcb_status == "UpToDate"
    assert claims.measurements["mrtd"] == TDX_MRTD
    assert not claims.debug
    assert set(claims.measurements) >= {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"}
    assert {"mr_config_id", "mr_owner"} <= set(claims.measurements)
    assert claims.report_data == TDX_QUOTE[48 + 520 : 48 + 584]
    assert claims.details["advisory_ids"] == ""
    assert claims.public_key is None


@pytest.mark.parametrize(
    "now",
    [
        TDX_START - timedelta(seconds=1),
        TDX_END,
        TDX_END + timedelta(days=1),
        datetime(2023, 1, 1, tzinfo=UTC),
        datetime(2034, 1, 1, tzinfo=UTC),
    ],
)
def test_tdx_sample_is_refused_outside_its_window(now: datetime) -> None:
    _refused("window", TdxVerifier(), TDX_EVIDENCE, now=now)


def test_sgx_sample_is_refused_for_its_tcb_status_by_default() -> None:
    _refused("tcb", SgxVerifier(), SGX_EVIDENCE)


@pytest.mark.parametrize("now", [SGX_START, NOW, SGX_END - timedelta(seconds=1)])
def test_sgx_sample_is_accepted_when_the_policy_lists_its_status(now: datetime) -> None:
    claims = SgxVerifier().verify(SGX_EVIDENCE, expect=NONE, now=now, policy=SGX_POLICY)
    assert claims.platform is Platform.SGX
    assert claims.tcb_status == SGX_STATUS
    assert claims.details["advisory_ids"] == "INTEL-SA-00289,INTEL-SA-00615"
    assert claims.measurements == {
        "mrenclave": SGX_MRENCLAVE,
        "mrsigner": "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
        "isv_prod_id": "0",
        "isv_svn": "0",
    }
    assert claims.report_data == b"Hello, world!".ljust(64, b"\0")
    assert not claims.debug


@pytest.mark.parametrize("now", [SGX_START - timedelta(seconds=1), SGX_END])
def test_sgx_sample_is_refused_outside_its_window_even_when_its_status_is_listed(
    now: datetime,
) -> None:
    _refused("window", SgxVerifier(), SGX_EVIDENCE, now=now, policy=SGX_POLICY)


def test_the_verifier_is_chosen_by_platform_not_by_the_evidence() -> None:
    _refused("platform", SgxVerifier(), TDX_EVIDENCE)
    _refused("platform", TdxVerifier(), SGX_EVIDENCE, policy=SGX_POLICY)


def test_packaged_root_is_the_pinned_intel_root() -> None:
    root = load_intel_root()
    assert root.fingerprint(hashes.SHA256()).hex().upper().startswith("44A0196B")
    sample = x509.load_pem_x509_certificate((V / "intel_sgx_root_ca.pem").read_bytes())
    assert root.public_bytes(Encoding.DER) == sample.public_bytes(Encoding.DER)


# --- bindings and measurements -------------------------------------------------------------


def test_expected_report_data_must_match() -> None:
    good = TDX_QUOTE[48 + 520 : 48 + 584]
    claims = TdxVerifier().verify(
        TDX_EVIDENCE, expect=Expectation(report_data=good), now=NOW, policy=Policy()
    )
    assert claims.report_data == good
    for wrong in (bytes(64), good[:-1] + bytes([good[-1] ^ 1]), good[:32]):
        _refused("report_data", TdxVerifier(), TDX_EVIDENCE, expect=Expectation(report_data=wrong))


@pytest.mark.parametrize(
    ("expect", "check"),
    [(Expectation(nonce=b"n" * 32), "nonce"), (Expectation(public_key=b"k" * 32), "public_key")],
)
def test_bindings_a_quote_cannot_carry_are_refused(expect: Expectation, check: str) -> None:
    _refused(check, TdxVerifier(), TDX_EVIDENCE, expect=expect)


@pytest.mark.parametrize(
    ("verifier", "evidence", "name", "value", "policy"),
    [
        (TdxVerifier, TDX_EVIDENCE, "mrtd", TDX_MRTD, Policy()),
        (TdxVerifier, TDX_EVIDENCE, "rtmr3", "00" * 48, Policy()),
        (SgxVerifier, SGX_EVIDENCE, "mrenclave", SGX_MRENCLAVE, SGX_POLICY),
        (SgxVerifier, SGX_EVIDENCE, "isv_svn", "0", SGX_POLICY),
    ],
)
def test_measurement_policy_accepts_known_and_refuses_unknown(
    verifier: type[TdxVerifier], evidence: bytes, name: str, value: str, policy: Policy
) -> None:
    known = replace(policy, measurements={name: frozenset({value})})
    claims = verifier().verify(evidence, expect=NONE, now=NOW, policy=known)
    assert claims.measurements[name] == value
    unknown = replace(policy, measurements={name: frozenset({"ab" * 48})})
    _refused("measurement", verifier(), evidence, policy=unknown)
    missing = replace(policy, measurements={"pcr0": frozenset({value})})
    _refused("measurement", verifier(), evidence, policy=missing)


def test_unknown_policy_options_are_refused() -> None:
    _refused("policy", TdxVerifier(), TDX_EVIDENCE, policy=Policy(options={"max_vmpl": 0}))


# --- flipped bits ------------------------------------------------------------------------


def _flip(data: bytes, pos: int, bit: int = 0) -> bytes:
    return data[:pos] + bytes([data[pos] ^ (1 << bit)]) + data[pos + 1 :]


def _tdx_regions() -> dict[str, int]:
    """Named byte positions in the TDX sample, one or more per structure."""
    sig = 48 + 584 + 4  # signature data starts after the body and its length
    qe = sig + 128 + 6  # QE report (v4: inside certification data type 6)
    auth = qe + 384 + 64
    pem = auth + 2 + 32 + 6
    return {
        "version": 0,
        "att_key_type": 2,
        "tee_type": 4,
        "qe_vendor_id": 12,
        "user_data": 40,
        "tee_tcb_svn": 48,
        "mr_seam": 48 + 16,
        "td_attributes_debug": 48 + 120,
        "xfam": 48 + 128,
        "mrtd": 48 + 136 + 47,
        "mr_config_id": 48 + 184,
        "mr_owner": 48 + 232,
        "rtmr0": 48 + 328,
        "rtmr3": 48 + 472 + 10,
        "report_data_first": 48 + 520,
        "report_data_last": 48 + 583,
        "signature_length": sig - 4,
        "signature_length_high": sig - 1,
        "quote_signature_r": sig,
        "quote_signature_s": sig + 63,
        "attestation_key": sig + 64,
        "attestation_key_y": sig + 127,
        "outer_cert_type": sig + 128,
        "outer_cert_size": sig + 130,
        "qe_report_cpusvn": qe,
        "qe_report_attributes": qe + 48,
        "qe_report_mrsigner": qe + 128,
        "qe_report_data": qe + 320,
        "qe_report_data_zero_half": qe + 383,
        "qe_report_signature": qe + 384,
        "qe_auth_size": auth,
        "qe_auth_data": auth + 2,
        "pck_cert_type": auth + 34,
        "pck_cert_size": auth + 36,
        "pem_header": pem,
        "pem_leaf_body": pem + 500,
        "pem_intermediate": pem + 2000,
        "pem_root": pem + 3400,
        "pem_trailing_nul": pem + 3677,
        "zero_padding": len(TDX_QUOTE) - 1,
    }


@pytest.mark.parametrize(("where", "pos"), sorted(_tdx_regions().items()))
@pytest.mark.parametrize("bit", [0, 5])
def test_a_flipped_bit_in_the_tdx_quote_is_refused(where: str, pos: int, bit: int) -> None:
    quote = _flip(TDX_QUOTE, pos, bit)
    _refused(None, TdxVerifier(), encode_evidence(quote, TDX_COLL))


@pytest.mark.parametrize("pos", range(0, len(SGX_QUOTE), 97))
def test_a_flipped_bit_anywhere_in_the_sgx_quote_is_refused(pos: int) -> None:
    quote = _flip(SGX_QUOTE, pos, pos % 8)
    _refused(None, SgxVerifier(), encode_evidence(quote, SGX_COLL), policy=SGX_POLICY)


def test_the_flip_positions_name_the_structures_they_claim() -> None:
    regions = _tdx_regions()
    q = parse_quote(TDX_QUOTE)
    assert TDX_QUOTE[regions["outer_cert_type"]] == 6
    assert TDX_QUOTE[regions["pck_cert_type"]] == 5
    assert TDX_QUOTE[regions["pem_header"] : regions["pem_header"] + 5] == b"-----"
    assert TDX_QUOTE[regions["pem_trailing_nul"]] == 0
    assert TDX_QUOTE[regions["qe_report_cpusvn"] :][:384] == q.qe_report
    assert TDX_QUOTE[regions["qe_auth_data"] :][:32] == q.qe_auth_data


@pytest.mark.parametrize(
    ("field", "at", "check"),
    [
        ("tcb_info_signature", 0, "collateral"),
        ("tcb_info_signature", 63, "collateral"),
        ("qe_identity_signature", 0, "collateral"),
        ("qe_identity_signature", 40, "collateral"),
        ("root_ca_crl", -1, "collateral"),
        ("pck_crl", -10, "collateral"),
        ("pck_crl", 200, None),
    ],
)
def test_a_flipped_bit_in_binary_collateral_is_refused(
    field: str, at: int, check: str | None
) -> None:
    raw = bytes.fromhex(TDX_COLL[field])
    coll = TDX_COLL | {field: _flip(raw, at % len(raw)).hex()}
    _refused(check, TdxVerifier(), encode_evidence(TDX_QUOTE, coll))


@pytest.mark.parametrize(
    ("field", "at"),
    [
        ("tcb_info", 20),
        ("tcb_info", -30),
        ("qe_identity", 40),
        ("qe_identity", -5),
        ("tcb_info_issuer_chain", 300),
        ("qe_identity_issuer_chain", 900),
        ("pck_crl_issuer_chain", 10),
        ("pck_crl_issuer_chain", -2),
        ("tcb_info_signature", 3),
        ("root_ca_crl", 0),
    ],
)
def test_a_flipped_bit_in_collateral_text_is_refused(field: str, at: int) -> None:
    text = TDX_COLL[field].encode()
    coll = TDX_COLL | {field: _flip(text, at % len(text), 0).decode("latin-1")}
    _refused(None, TdxVerifier(), encode_evidence(TDX_QUOTE, coll))


@pytest.mark.parametrize("pos", [0, 1, 20, 200, 5000, -40, -12, -2, -1])
def test_a_flipped_bit_in_the_evidence_envelope_is_refused(pos: int) -> None:
    _refused(None, TdxVerifier(), _flip(TDX_EVIDENCE, pos % len(TDX_EVIDENCE), 1))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d | {"quote": d["quote"].rstrip("=")},
        lambda d: d | {"format": "tokengate-dcap-evidence/2"},
        lambda d: d | {"extra": 1},
        lambda d: d | {"collateral": d["collateral"] | {"pck_certificate_chain": ""}},
        lambda d: (
            d | {"collateral": d["collateral"] | {"pck_crl": d["collateral"]["pck_crl"].upper()}}
        ),
        lambda d: {k: v for k, v in d.items() if k != "collateral"},
    ],
)
def test_evidence_must_be_the_one_canonical_spelling(mutate: object) -> None:
    doc = json.loads(TDX_EVIDENCE)
    changed = mutate(doc)  # type: ignore[operator]
    _refused(
        "format", TdxVerifier(), json.dumps(changed, sort_keys=True, separators=(",", ":")).encode()
    )
    # the unmutated document, re-encoded the same way, is the evidence itself
    assert json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() == TDX_EVIDENCE


def test_non_zero_bytes_after_the_signature_data_are_refused() -> None:
    _refused("format", TdxVerifier(), encode_evidence(TDX_QUOTE + b"\x01", TDX_COLL))
    claims = TdxVerifier().verify(
        encode_evidence(TDX_QUOTE + bytes(8), TDX_COLL), expect=NONE, now=NOW, policy=Policy()
    )
    assert claims.tcb_status == "UpToDate"


# --- a forged world: the DCAP PKI rebuilt under a throwaway root ------------------------------


def _raw_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32) + s.to_bytes(32)


def _copy_cert(
    template: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    """A certificate with ``template``'s subject and extensions but ``key`` and ``issuer``."""
    issuer_name = template.subject if issuer is None else issuer.subject
    issuer_key = signer.public_key()
    b = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
    )
    for ext in template.extensions:
        if not isinstance(ext.value, x509.SubjectKeyIdentifier | x509.AuthorityKeyIdentifier):
            b = b.add_extension(ext.value, critical=ext.critical)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key)
    return b.add_extension(aki, critical=False).sign(signer, hashes.SHA256())


def _crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, revoked: list[int]) -> str:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(datetime(2025, 6, 1, tzinfo=UTC))
        .next_update(datetime(2025, 8, 1, tzinfo=UTC))
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for serial in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial)
        b = b.add_revoked_certificate(
            entry.revocation_date(datetime(2025, 6, 1, tzinfo=UTC)).build()
        )
    return b.sign(key, hashes.SHA256()).public_bytes(Encoding.DER).hex()


def _pem(*certs: x509.Certificate) -> str:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs).decode()


class _World:
    """Intel's subjects, extensions, TCB info and QE identity; throwaway keys and root."""

    def __init__(self, quote: bytes, coll: dict[str, str]) -> None:
        self.real = parse_quote(quote)
        leaf_t, ca_t, root_t = self.real.pck_chain
        tcb_t = x509.load_pem_x509_certificates(coll["tcb_info_issuer_chain"].encode())[0]
        keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
        self.root_key, ca_key, self.pck_key, tcb_key = keys
        self.root = _copy_cert(root_t, self.root_key, None, self.root_key)
        self.ca = _copy_cert(ca_t, ca_key, self.root, self.root_key)
        self.leaf = _copy_cert(leaf_t, self.pck_key, self.ca, ca_key)
        tcb = _copy_cert(tcb_t, tcb_key, self.root, self.root_key)
        self.ca_key = ca_key
        self.coll = coll | {
            "pck_crl_issuer_chain": _pem(self.ca, self.root),
            "root_ca_crl": _crl(self.root, self.root_key, []),
            "pck_crl": _crl(self.ca, ca_key, []),
            "tcb_info_issuer_chain": _pem(tcb, self.root),
            "tcb_info_signature": _raw_sign(tcb_key, coll["tcb_info"].encode()).hex(),
            "qe_identity_issuer_chain": _pem(tcb, self.root),
            "qe_identity_signature": _raw_sign(tcb_key, coll["qe_identity"].encode()).hex(),
        }

    def quote(self, body: bytes | None = None) -> bytes:
        """A quote with ``body`` (default: the real one), signed through the forged chain."""
        real, ak = self.real, ec.generate_private_key(ec.SECP256R1())
        ak_raw = ak.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]
        bound = hashlib.sha256(ak_raw + real.qe_auth_data).digest() + bytes(32)
        qe_report = real.qe_report[:320] + bound
        pem = _pem(self.leaf, self.ca, self.root).encode()
        inner = qe_report + _raw_sign(self.pck_key, qe_report)
        inner += struct.pack("<H", len(real.qe_auth_data)) + real.qe_auth_data
        inner += struct.pack("<HI", 5, len(pem)) + pem
        if real.version == 4:
            inner = struct.pack("<HI", 6, len(inner)) + inner
        signed = real.signed[:48] + (real.body if body is None else body)
        sig_data = _raw_sign(ak, signed) + ak_raw + inner
        return signed + struct.pack("<I", len(sig_data)) + sig_data

    def evidence(self, body: bytes | None = None, **coll: str) -> bytes:
        return encode_evidence(self.quote(body), self.coll | coll)


@pytest.fixture(scope="module")
def tdx_world() -> _World:
    return _World(TDX_QUOTE, TDX_COLL)


@pytest.fixture(scope="module")
def sgx_world() -> _World:
    return _World(SGX_QUOTE, SGX_COLL)


def test_forged_world_verifies_only_under_its_own_root(tdx_world: _World) -> None:
    evidence = tdx_world.evidence()
    claims = TdxVerifier(root=tdx_world.root).verify(
        evidence, expect=NONE, now=NOW, policy=Policy()
    )
    assert claims.tcb_status == "UpToDate"
    assert claims.measurements["mrtd"] == TDX_MRTD
    _refused("root", TdxVerifier(), evidence)


def test_real_evidence_is_refused_under_a_throwaway_root(tdx_world: _World) -> None:
    _refused("root", TdxVerifier(root=tdx_world.root), TDX_EVIDENCE)
    _refused("root", SgxVerifier(root=tdx_world.root), SGX_EVIDENCE, policy=SGX_POLICY)


def test_real_quote_with_collateral_from_another_root_is_refused(tdx_world: _World) -> None:
    _refused("root", TdxVerifier(), encode_evidence(TDX_QUOTE, tdx_world.coll))
    forged_quote_real_collateral = encode_evidence(tdx_world.quote(), TDX_COLL)
    _refused("root", TdxVerifier(root=tdx_world.root), forged_quote_real_collateral)


def _tdx_debug_body(real: Quote) -> bytes:
    body = bytearray(real.body)
    body[120] |= 0x01  # TDATTRIBUTES.DEBUG
    return bytes(body)


@pytest.mark.parametrize("allow_debug", [False, True])
def test_a_debug_td_is_refused_even_when_debug_is_allowed(
    tdx_world: _World, allow_debug: bool
) -> None:
    """dcap-qvl evaluates no TCB for a debug quote; the same quote without DEBUG passes."""
    verifier, policy = TdxVerifier(root=tdx_world.root), Policy(allow_debug=allow_debug)
    claims = verifier.verify(tdx_world.evidence(), expect=NONE, now=NOW, policy=policy)
    assert not claims.debug
    _refused("debug", verifier, tdx_world.evidence(_tdx_debug_body(tdx_world.real)), policy=policy)


@pytest.mark.parametrize("allow_debug", [False, True])
def test_a_debug_enclave_is_refused_even_when_debug_is_allowed(
    sgx_world: _World, allow_debug: bool
) -> None:
    verifier, policy = (
        SgxVerifier(root=sgx_world.root),
        replace(SGX_POLICY, allow_debug=allow_debug),
    )
    claims = verifier.verify(sgx_world.evidence(), expect=NONE, now=NOW, policy=policy)
    assert not claims.debug
    body = bytearray(sgx_world.real.body)
    body[48] |= 0x02  # ATTRIBUTES.FLAGS.DEBUG
    _refused("debug", verifier, sgx_world.evidence(bytes(body)), policy=policy)


def test_a_revoked_pck_certificate_is_refused(tdx_world: _World) -> None:
    revoked = _crl(tdx_world.ca, tdx_world.ca_key, [tdx_world.leaf.serial_number])
    _refused("revoked", TdxVerifier(root=tdx_world.root), tdx_world.evidence(pck_crl=revoked))
    other = _crl(tdx_world.ca, tdx_world.ca_key, [tdx_world.leaf.serial_number + 1])
    claims = TdxVerifier(root=tdx_world.root).verify(
        tdx_world.evidence(pck_crl=other), expect=NONE, now=NOW, policy=Policy()
    )
    assert claims.tcb_status == "UpToDate"


def test_a_revoked_pck_ca_is_refused(tdx_world: _World) -> None:
    revoked = _crl(tdx_world.root, tdx_world.root_key, [tdx_world.ca.serial_number])
    _refused("revoked", TdxVerifier(root=tdx_world.root), tdx_world.evidence(root_ca_crl=revoked))


def test_a_crl_signed_by_another_key_is_refused(tdx_world: _World) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = _crl(tdx_world.ca, stranger, [])
    _refused("collateral", TdxVerifier(root=tdx_world.root), tdx_world.evidence(pck_crl=forged))


# --- go-tdx-guest: a second TDX platform, collateral without CRLs ------------------------------


GO_QUOTE = (V / "gotdxguest_tdx_prod_quote_SPR_E4.bin").read_bytes()
GO_TAIL = b"\nextra bytes(only for testing purpose)\n"
GO_NOW = datetime(2023, 6, 25, tzinfo=UTC)


def _go_signed(raw: str, key: str) -> tuple[bytes, bytes]:
    """The signed JSON text of a PCS answer {key: {...}, "signature": hex} and its signature."""
    start = raw.index("{", raw.index(f'"{key}"'))
    end = raw.rindex(',"signature"')
    return raw[start:end].encode(), bytes.fromhex(json.loads(raw)["signature"])


def test_go_tdx_guest_quote_passes_every_check_that_needs_no_crl() -> None:
    """dcap-qvl needs the root CA CRL and PCK CRL, which the go-tdx-guest sample lacks."""
    signed = GO_QUOTE.removesuffix(GO_TAIL)  # the sample's unsigned test tail
    quote = parse_quote(signed)
    verify_quote_signatures(quote)
    root = load_intel_root()
    check_chain(quote.pck_chain, root, GO_NOW, "pck chain")
    tcb_chain = x509.load_pem_x509_certificates(
        (V / "gotdxguest_tcb_signing_chain.pem").read_bytes()
    )
    check_chain(tcb_chain, root, GO_NOW, "tcb signing chain")
    signer = tcb_chain[0].public_key()
    assert isinstance(signer, ec.EllipticCurvePublicKey)
    for name, key in (
        ("gotdxguest_tcbinfo_fmspc50806f000000.json", "tcbInfo"),
        ("gotdxguest_qe_identity.json", "enclaveIdentity"),
    ):
        text, signature = _go_signed((V / name).read_text(), key)
        assert verify_p256(signer, signature, text)
        assert not verify_p256(signer, signature, _flip(text, 30))
    assert not quote.debug
    assert (
        json.loads(
            _go_signed((V / "gotdxguest_tcbinfo_fmspc50806f000000.json").read_text(), "tcbInfo")[0]
        )["fmspc"]
        == "50806f000000"
    )


def test_go_tdx_guest_quote_is_refused_with_its_test_tail_or_outside_its_window() -> None:
    with pytest.raises(EvidenceRefused) as info:
        parse_quote(GO_QUOTE)
    assert info.value.check == "format"
    quote = parse_quote(GO_QUOTE.removesuffix(GO_TAIL))
    with pytest.raises(EvidenceRefused) as info:
        check_chain(
            quote.pck_chain, load_intel_root(), datetime(2029, 9, 21, tzinfo=UTC), "pck chain"
        )
    assert info.value.check == "window"
    with pytest.raises(EvidenceRefused) as info:
        verify_quote_signatures(replace(quote, body=quote.body, signed=_flip(quote.signed, 100)))
    assert info.value.check == "signature"
