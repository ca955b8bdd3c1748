"""AMD SEV-SNP verifier: a real Milan report and VCEK, plus a throwaway AMD-shaped chain.

The real sample (tests/tee/vectors/sev-snp, see its README) proves the verifier
against AMD's pinned roots; a chain built here (RSA-4096 ARK and ASK signing
with RSASSA-PSS/SHA-384, a P-384 VCEK with TCB and hwID extensions, reports
signed here) proves the success path of each check beside its refusal.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tee.attestation import Claims, Expectation, Platform, Policy
from tee.errors import EvidenceRefused, TeeError
from tee.sev_snp import AmdRoots, SevSnpVerifier, encode_evidence
from tee.snp_report import REPORT_SIZE, SIGNED_SIZE, parse_report

VECTORS = Path(__file__).parent / "vectors" / "sev-snp"
ROOTS = Path(__file__).parents[2] / "tee" / "roots"
SERIAL_ZERO_MESSAGE = (
    "Parsed a serial number which wasn't positive (i.e., it was negative or zero), "
    "which is disallowed by RFC 5280. Loading this certificate will cause an "
    "exception in a future release of cryptography."
)
# The real VCEK has serial number 0: ignore exactly that deprecation, nothing broader.
SERIAL_ZERO = pytest.mark.filterwarnings(
    f"ignore:{re.escape(SERIAL_ZERO_MESSAGE)}:cryptography.utils.CryptographyDeprecationWarning"
)
NOW = datetime(2024, 6, 1, tzinfo=UTC)
SAMPLE_REPORT_DATA = bytes([1, 2, 3, 4, 5]) + bytes(59)
SAMPLE_MEASUREMENT = (
    "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
    "6bdf8a9ece31a5a608eb0cf2e4872b01"
)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def verify(
    verifier: SevSnpVerifier,
    evidence: bytes,
    *,
    expect: Expectation | None = None,
    now: datetime = NOW,
    policy: Policy | None = None,
) -> Claims:
    return verifier.verify(
        evidence, expect=expect or Expectation(), now=now, policy=policy or Policy()
    )


def refused(verifier: SevSnpVerifier, evidence: bytes, **kw: object) -> str:
    """The check named by the refusal of ``evidence``."""
    with pytest.raises(EvidenceRefused) as info:
        verify(verifier, evidence, **kw)  # type: ignore[arg-type]
    return info.value.check


def flip(data: bytes, position: int, bit: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 1 << bit
    return bytes(changed)


@pytest.fixture(scope="module")
def amd() -> SevSnpVerifier:
    """The production verifier: AMD's Milan and Genoa roots pinned in the package."""
    return SevSnpVerifier()


@pytest.fixture(scope="module")
def sample() -> bytes:
    report = (VECTORS / "gosevguest_milan_report.bin").read_bytes()
    return encode_evidence(report, (VECTORS / "gosevguest_milan_vcek.der").read_bytes())


DEBUG_ALLOWED = Policy(allow_debug=True)


# --- the real Milan sample against AMD's pinned roots ---------------------------------


@SERIAL_ZERO
def test_real_milan_report_verifies_when_debug_is_allowed(
    amd: SevSnpVerifier, sample: bytes
) -> None:
    claims = verify(
        amd, sample, expect=Expectation(report_data=SAMPLE_REPORT_DATA), policy=DEBUG_ALLOWED
    )
    assert claims.platform is Platform.SEV_SNP
    assert claims.measurements == {"measurement": SAMPLE_MEASUREMENT}
    assert claims.report_data == SAMPLE_REPORT_DATA
    assert claims.debug is True
    assert claims.tcb_status == "UpToDate"
    assert (claims.public_key, claims.nonce) == (None, None)
    assert claims.details["product"] == "milan"
    assert claims.details["policy"] == "0xb0000"
    assert claims.details["reported_tcb"] == "0200000000000544"
    assert claims.details["host_data"] == "00" * 32
    assert claims.details["id_key_digest"] == "00" * 48


@SERIAL_ZERO
def test_real_milan_report_is_refused_by_default_for_debug(
    amd: SevSnpVerifier, sample: bytes
) -> None:
    assert refused(amd, sample, expect=Expectation(report_data=SAMPLE_REPORT_DATA)) == "debug"


@SERIAL_ZERO
@pytest.mark.parametrize(
    "report_data",
    [bytes(64), bytes([1, 2, 3, 4, 6]) + bytes(59), SAMPLE_REPORT_DATA[:32], b""],
    ids=["zeros", "one-bit-off", "prefix", "empty"],
)
def test_real_milan_report_with_other_report_data_is_refused(
    amd: SevSnpVerifier, sample: bytes, report_data: bytes
) -> None:
    expect = Expectation(report_data=report_data)
    assert refused(amd, sample, expect=expect, policy=DEBUG_ALLOWED) == "report_data"


@SERIAL_ZERO
@pytest.mark.parametrize(
    "now",
    [datetime(2022, 9, 24, 0, 55, 28, tzinfo=UTC), datetime(2029, 9, 24, 0, 55, 28, tzinfo=UTC)],
    ids=["first-second", "last-second"],
)
def test_real_milan_report_verifies_at_the_edges_of_its_window(
    amd: SevSnpVerifier, sample: bytes, now: datetime
) -> None:
    assert verify(amd, sample, now=now, policy=DEBUG_ALLOWED).debug


@SERIAL_ZERO
@pytest.mark.parametrize(
    "now",
    [
        datetime(2022, 9, 24, 0, 55, 27, tzinfo=UTC),
        datetime(2029, 9, 24, 0, 55, 29, tzinfo=UTC),
        datetime(2019, 1, 1, tzinfo=UTC),  # before the roots too
        datetime(2046, 1, 1, tzinfo=UTC),  # after the roots too
    ],
    ids=["before", "after", "before-roots", "after-roots"],
)
def test_real_milan_report_outside_its_window_is_refused(
    amd: SevSnpVerifier, sample: bytes, now: datetime
) -> None:
    assert refused(amd, sample, now=now, policy=DEBUG_ALLOWED) == "window"


@SERIAL_ZERO
def test_a_naive_clock_is_refused(amd: SevSnpVerifier, sample: bytes) -> None:
    assert refused(amd, sample, now=datetime(2024, 6, 1), policy=DEBUG_ALLOWED) == "window"


# Every 7th byte of the report (signed body, signature, reserved tail), a rotating bit.
@SERIAL_ZERO
@pytest.mark.parametrize("position", range(0, REPORT_SIZE, 7))
def test_real_milan_report_with_a_flipped_bit_is_refused(
    amd: SevSnpVerifier, sample: bytes, position: int
) -> None:
    refused(amd, flip(sample, position, position % 8), policy=DEBUG_ALLOWED)


@SERIAL_ZERO
@pytest.mark.parametrize("position", [*range(0, 1360, 11), 771, 775, 800, 829, 842])
def test_real_milan_vcek_with_a_flipped_bit_is_refused(
    amd: SevSnpVerifier, sample: bytes, position: int
) -> None:
    # 771..842 is the VCEK's outer (unsigned) signature AlgorithmIdentifier.
    refused(amd, flip(sample, REPORT_SIZE + position, position % 8), policy=DEBUG_ALLOWED)


@SERIAL_ZERO
@pytest.mark.parametrize(
    "cut",
    [
        lambda e: e[:REPORT_SIZE],
        lambda e: e[: REPORT_SIZE - 1],
        lambda e: e[:-1],
        lambda e: e + b"\0",
    ],
    ids=["report-only", "short-report", "short-vcek", "trailing-byte"],
)
def test_real_milan_evidence_cut_or_extended_is_refused(
    amd: SevSnpVerifier, sample: bytes, cut: object
) -> None:
    assert refused(amd, cut(sample), policy=DEBUG_ALLOWED) == "format"  # type: ignore[operator]


@SERIAL_ZERO
def test_real_milan_vcek_against_the_genoa_root_is_refused(
    amd: SevSnpVerifier, sample: bytes
) -> None:
    policy = Policy(allow_debug=True, options={"product": "genoa"})
    assert refused(amd, sample, policy=policy) == "root"
    # twin: naming the right product verifies
    assert verify(amd, sample, policy=Policy(allow_debug=True, options={"product": "milan"}))


@SERIAL_ZERO
@pytest.mark.parametrize(
    "measurements",
    [{"measurement": frozenset({"00" * 48})}, {"mrtd": frozenset({SAMPLE_MEASUREMENT})}],
    ids=["other-value", "other-name"],
)
def test_real_milan_report_with_an_unknown_measurement_is_refused(
    amd: SevSnpVerifier, sample: bytes, measurements: Mapping[str, frozenset[str]]
) -> None:
    policy = Policy(allow_debug=True, measurements=measurements)
    assert refused(amd, sample, policy=policy) == "measurement"


@SERIAL_ZERO
def test_real_milan_report_with_its_measurement_listed_verifies(
    amd: SevSnpVerifier, sample: bytes
) -> None:
    policy = Policy(allow_debug=True, measurements={"measurement": frozenset({SAMPLE_MEASUREMENT})})
    assert verify(amd, sample, policy=policy).measurements["measurement"] == SAMPLE_MEASUREMENT


@SERIAL_ZERO
@pytest.mark.parametrize(
    ("expect", "check"),
    [(Expectation(nonce=b"n" * 32), "nonce"), (Expectation(public_key=b"k" * 32), "public_key")],
)
def test_expectations_sev_snp_cannot_carry_are_refused(
    amd: SevSnpVerifier, sample: bytes, expect: Expectation, check: str
) -> None:
    assert refused(amd, sample, expect=expect, policy=DEBUG_ALLOWED) == check


@pytest.mark.parametrize(
    "options",
    [
        {"maxvmpl": 0},
        {"product": "turin"},
        {"max_vmpl": 4},
        {"max_vmpl": True},
        {"max_vmpl": "0"},
        {"min_tcb": 5},
        {"min_tcb": {"fmc": 1}},
        {"min_tcb": {"snp": 256}},
        {"min_tcb": {"snp": -1}},
    ],
)
def test_bad_options_are_refused_before_the_evidence_is_read(
    amd: SevSnpVerifier, options: Mapping[str, object]
) -> None:
    assert refused(amd, b"", policy=Policy(options=options)) == "policy"


def test_the_pinned_roots_are_the_published_amd_roots() -> None:
    for product in ("milan", "genoa"):
        name = f"amd_{product}_ask_ark.pem"
        assert (ROOTS / name).read_bytes() == (VECTORS / name).read_bytes()
        roots = AmdRoots.pinned(product)
        cn = roots.ark.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == f"ARK-{product.capitalize()}"


def test_roots_that_do_not_chain_are_refused_at_load() -> None:
    milan_ask, _ = x509.load_pem_x509_certificates((ROOTS / "amd_milan_ask_ark.pem").read_bytes())
    _, genoa_ark = x509.load_pem_x509_certificates((ROOTS / "amd_genoa_ask_ark.pem").read_bytes())
    mixed = milan_ask.public_bytes(Encoding.PEM) + genoa_ark.public_bytes(Encoding.PEM)
    with pytest.raises(TeeError, match="not signed"):
        AmdRoots.from_pem("milan", mixed)
    with pytest.raises(TeeError, match="ask then the ark"):
        AmdRoots.from_pem("milan", genoa_ark.public_bytes(Encoding.PEM))
    with pytest.raises(TeeError, match="not pem"):
        AmdRoots.from_pem(
            "milan", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
    with pytest.raises(ValueError, match="own product"):
        SevSnpVerifier(roots={"genoa": AmdRoots.pinned("milan")})


@SERIAL_ZERO
def test_the_real_report_parses_to_its_known_fields() -> None:
    report = parse_report((VECTORS / "gosevguest_milan_report.bin").read_bytes())
    assert (report.version, report.guest_svn, report.policy, report.vmpl) == (2, 0, 0xB0000, 0)
    assert report.debug
    assert report.reported_tcb.components() == {
        "bootloader": 2,
        "tee": 0,
        "snp": 5,
        "microcode": 0x44,
    }
    assert report.report_data == SAMPLE_REPORT_DATA
    assert report.measurement.hex() == SAMPLE_MEASUREMENT
    assert report.chip_id.hex().startswith("3ac3fe21e13fb099")
    vcek = x509.load_der_x509_certificate((VECTORS / "gosevguest_milan_vcek.der").read_bytes())
    hwid = vcek.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4"))
    assert hwid.value.value == report.chip_id  # type: ignore[attr-defined]


# --- a throwaway AMD-shaped chain: every check's success path beside its refusal -------

TCB = bytes([3, 0, 0, 0, 0, 0, 8, 0xD1])  # bl 3, tee 0, snp 8, ucode 209 (DER needs a 00 pad)
COMPONENT_BYTE = {"bootloader": 0, "tee": 1, "snp": 6, "microcode": 7}
TCB_OID = {
    "bootloader": "1.3.6.1.4.1.3704.1.3.1",
    "tee": "1.3.6.1.4.1.3704.1.3.2",
    "snp": "1.3.6.1.4.1.3704.1.3.3",
    "microcode": "1.3.6.1.4.1.3704.1.3.8",
}
HWID_OID = "1.3.6.1.4.1.3704.1.4"
CHIP_ID = bytes(range(64))
REPORT_DATA = bytes(range(100, 164))
MEASUREMENT = bytes(range(48))
START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)


def amd_name(cn: str) -> x509.Name:
    """The names AMD uses, so only keys tell the throwaway chain from the real one."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Advanced Micro Devices"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True)
class Chain:
    ark_key: rsa.RSAPrivateKey
    ask_key: rsa.RSAPrivateKey
    ask: x509.Certificate
    roots: AmdRoots
    vcek_key: ec.EllipticCurvePrivateKey


def ca_cert(
    subject: str, issuer: str, key: rsa.RSAPrivateKey, signer: rsa.RSAPrivateKey, serial: int
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(amd_name(subject))
        .issuer_name(amd_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(START)
        .not_valid_after(END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA384(), rsa_padding=PSS)
    )


@pytest.fixture(scope="module")
def chain() -> Chain:
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    ark = ca_cert("ARK-Milan", "ARK-Milan", ark_key, ark_key, 1)
    ask = ca_cert("SEV-Milan", "ARK-Milan", ask_key, ark_key, 2)
    pem = ask.public_bytes(Encoding.PEM) + ark.public_bytes(Encoding.PEM)
    roots = AmdRoots.from_pem("milan", pem)
    return Chain(ark_key, ask_key, ask, roots, ec.generate_private_key(ec.SECP384R1()))


@pytest.fixture(scope="module")
def own(chain: Chain) -> SevSnpVerifier:
    """A verifier that pins the throwaway chain as the Milan root."""
    return SevSnpVerifier(roots={"milan": chain.roots})


def der_integer(value: int) -> bytes:
    body = value.to_bytes(2 if value >= 0x80 else 1, "big")
    return bytes([0x02, len(body)]) + body


def make_vcek(
    chain: Chain,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    tcb: bytes = TCB,
    hwid: bytes | None = CHIP_ID,
    issuer: str = "SEV-Milan",
    signer: rsa.RSAPrivateKey | None = None,
    rsa_padding: padding.PSS | padding.PKCS1v15 = PSS,
    not_after: datetime = END,
) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(amd_name("SEV-VCEK"))
        .issuer_name(amd_name(issuer))
        .public_key((key or chain.vcek_key).public_key())
        .serial_number(3)
        .not_valid_before(START)
        .not_valid_after(not_after)
    )
    for name, oid in TCB_OID.items():
        value = der_integer(tcb[COMPONENT_BYTE[name]])
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
        )
    if hwid is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(HWID_OID), hwid), critical=False
        )
    cert = builder.sign(signer or chain.ask_key, hashes.SHA384(), rsa_padding=rsa_padding)
    return cert.public_bytes(Encoding.DER)


def make_report(
    key: ec.EllipticCurvePrivateKey,
    *,
    version: int = 2,
    policy: int = 0x30000,
    vmpl: int = 0,
    algo: int = 1,
    flags: int = 0,
    tcb: bytes = TCB,
    report_data: bytes = REPORT_DATA,
) -> bytes:
    body = bytearray(SIGNED_SIZE)
    head = struct.pack(
        "<IIQ16s16sII8sQI", version, 7, policy, b"F" * 16, b"I" * 16, vmpl, algo, tcb, 1, flags
    )
    body[: len(head)] = head
    body[0x50:0x90] = report_data
    body[0x90:0xC0] = MEASUREMENT
    body[0xC0:0xE0] = b"H" * 32
    body[0x180:0x188] = tcb
    body[0x1A0:0x1E0] = CHIP_ID
    body[0x1E0:0x1E8] = tcb
    body[0x1F0:0x1F8] = tcb
    r, s = decode_dss_signature(key.sign(bytes(body), ec.ECDSA(hashes.SHA384())))
    signature = r.to_bytes(72, "little") + s.to_bytes(72, "little")
    return bytes(body) + signature + bytes(REPORT_SIZE - SIGNED_SIZE - len(signature))


@pytest.fixture(scope="module")
def good(chain: Chain) -> bytes:
    return encode_evidence(make_report(chain.vcek_key), make_vcek(chain))


def test_roots_that_are_not_rsa_4096_authorities_are_refused_at_load(chain: Chain) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark = ca_cert("ARK-Milan", "ARK-Milan", small, small, 1)
    ask = ca_cert("SEV-Milan", "ARK-Milan", chain.ask_key, small, 2)
    with pytest.raises(TeeError, match="rsa-4096"):
        AmdRoots.from_pem("milan", ask.public_bytes(Encoding.PEM) + ark.public_bytes(Encoding.PEM))


def test_own_chain_evidence_verifies(own: SevSnpVerifier, good: bytes) -> None:
    policy = Policy(measurements={"measurement": frozenset({MEASUREMENT.hex()})})
    claims = verify(own, good, expect=Expectation(report_data=REPORT_DATA), policy=policy)
    assert claims.measurements == {"measurement": MEASUREMENT.hex()}
    assert (claims.debug, claims.tcb_status, claims.report_data) == (False, "UpToDate", REPORT_DATA)
    assert claims.details["host_data"] == (b"H" * 32).hex()
    assert claims.details["vmpl"] == "0"
    assert claims.details["guest_svn"] == "7"


def test_own_chain_evidence_against_amds_roots_is_refused(amd: SevSnpVerifier, good: bytes) -> None:
    assert refused(amd, good) == "chain"  # same names as AMD's, other keys


@SERIAL_ZERO
def test_real_milan_evidence_against_a_throwaway_root_is_refused(
    own: SevSnpVerifier, sample: bytes
) -> None:
    assert refused(own, sample, policy=DEBUG_ALLOWED) == "chain"


def test_own_chain_with_other_report_data_is_refused(own: SevSnpVerifier, good: bytes) -> None:
    expect = Expectation(report_data=bytes(64))
    assert refused(own, good, expect=expect) == "report_data"


@pytest.mark.parametrize("component", sorted(COMPONENT_BYTE))
def test_vcek_whose_tcb_differs_from_the_report_is_refused(
    chain: Chain, own: SevSnpVerifier, component: str
) -> None:
    tcb = bytearray(TCB)
    tcb[COMPONENT_BYTE[component]] += 1
    evidence = encode_evidence(make_report(chain.vcek_key), make_vcek(chain, tcb=bytes(tcb)))
    assert refused(own, evidence) == "vcek"


@pytest.mark.parametrize(
    "hwid",
    [bytes(64), CHIP_ID[:63], b"\x04\x40" + CHIP_ID, None],
    ids=["other", "short", "wrapped", "missing"],
)
def test_vcek_whose_hwid_differs_from_the_chip_id_is_refused(
    chain: Chain, own: SevSnpVerifier, hwid: bytes | None
) -> None:
    evidence = encode_evidence(make_report(chain.vcek_key), make_vcek(chain, hwid=hwid))
    assert refused(own, evidence) == "vcek"


def test_report_signed_by_another_key_is_refused(chain: Chain, own: SevSnpVerifier) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    evidence = encode_evidence(make_report(other), make_vcek(chain))
    assert refused(own, evidence) == "signature"


def test_vcek_with_a_p256_key_is_refused(chain: Chain, own: SevSnpVerifier) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    evidence = encode_evidence(make_report(chain.vcek_key), make_vcek(chain, key=p256))
    assert refused(own, evidence) == "vcek"


@pytest.mark.parametrize(
    ("kw", "check"),
    [
        ({"rsa_padding": padding.PKCS1v15()}, "chain"),
        ({"rsa_padding": padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=32)}, "chain"),
        ({"issuer": "ARK-Milan"}, "root"),
        ({"issuer": "SEV-Turin"}, "root"),
        ({"not_after": datetime(2024, 5, 31, tzinfo=UTC)}, "window"),
    ],
    ids=["pkcs1v15", "salt-32", "issued-by-ark-name", "unknown-product", "expired"],
)
def test_vcek_not_properly_issued_by_the_pinned_ask_is_refused(
    chain: Chain, own: SevSnpVerifier, kw: dict[str, object], check: str
) -> None:
    signer = chain.ark_key if kw.get("issuer") == "ARK-Milan" else None
    vcek = make_vcek(chain, signer=signer, **kw)  # type: ignore[arg-type]
    assert refused(own, encode_evidence(make_report(chain.vcek_key), vcek)) == check


@pytest.mark.parametrize(
    "kw",
    [{"version": 1}, {"version": 0}, {"algo": 2}, {"flags": 1 << 2}, {"flags": 7 << 2}],
    ids=["v1", "v0", "algo-2", "vlek", "no-key"],
)
def test_report_with_an_unsupported_shape_is_refused(
    chain: Chain, own: SevSnpVerifier, kw: dict[str, int]
) -> None:
    evidence = encode_evidence(make_report(chain.vcek_key, **kw), make_vcek(chain))  # type: ignore[arg-type]
    assert refused(own, evidence) == "format"


def test_report_version_3_verifies(chain: Chain, own: SevSnpVerifier) -> None:
    evidence = encode_evidence(make_report(chain.vcek_key, version=3), make_vcek(chain))
    assert verify(own, evidence).details["version"] == "3"


def test_debug_guest_is_refused_unless_allowed(chain: Chain, own: SevSnpVerifier) -> None:
    evidence = encode_evidence(make_report(chain.vcek_key, policy=0xB0000), make_vcek(chain))
    assert refused(own, evidence) == "debug"
    assert verify(own, evidence, policy=DEBUG_ALLOWED).debug


@pytest.mark.parametrize(
    ("vmpl", "max_vmpl", "accepted"),
    [(0, None, True), (1, None, False), (1, 1, True), (3, 2, False), (3, 3, True)],
)
def test_vmpl_must_not_exceed_max_vmpl(
    chain: Chain, own: SevSnpVerifier, vmpl: int, max_vmpl: int | None, accepted: bool
) -> None:
    evidence = encode_evidence(make_report(chain.vcek_key, vmpl=vmpl), make_vcek(chain))
    policy = Policy(options={} if max_vmpl is None else {"max_vmpl": max_vmpl})
    if accepted:
        assert verify(own, evidence, policy=policy).details["vmpl"] == str(vmpl)
    else:
        assert refused(own, evidence, policy=policy) == "vmpl"


@pytest.mark.parametrize("component", sorted(COMPONENT_BYTE))
def test_reported_tcb_below_min_tcb_is_refused(
    own: SevSnpVerifier, good: bytes, component: str
) -> None:
    least = TCB[COMPONENT_BYTE[component]]
    at_least = Policy(options={"min_tcb": {component: least}})
    assert verify(own, good, policy=at_least).tcb_status == "UpToDate"
    above = Policy(options={"min_tcb": {component: least + 1}})
    assert refused(own, good, policy=above) == "tcb"
    tolerant = Policy(
        accepted_tcb=frozenset({"UpToDate", "OutOfDate"}),
        options={"min_tcb": {component: least + 1}},
    )
    assert verify(own, good, policy=tolerant).tcb_status == "OutOfDate"


def test_own_chain_with_an_unknown_measurement_is_refused(own: SevSnpVerifier, good: bytes) -> None:
    policy = Policy(measurements={"measurement": frozenset({bytes(48).hex()})})
    assert refused(own, good, policy=policy) == "measurement"


@pytest.mark.parametrize("position", range(0, REPORT_SIZE, 29))
def test_own_chain_evidence_with_a_flipped_bit_is_refused(
    own: SevSnpVerifier, good: bytes, position: int
) -> None:
    refused(own, flip(good, position, (position // 3) % 8), policy=DEBUG_ALLOWED)
