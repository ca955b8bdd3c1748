"""NitroVerifier against real AWS Nitro documents and documents built here with a throwaway CA.

Real samples (tests/tee/vectors/nitro, or $TOKENGATE_TESTVECTORS/attestation/nitro)
verify only with the clock pinned inside their windows. Every allow has its
deny twin: the same call with one thing changed is refused, naming the check.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from tee.attestation import Expectation, Platform, Policy
from tee.errors import EvidenceRefused, TeeError
from tee.nitro import AWS_NITRO_ROOT_G1_SHA256, NitroVerifier, load_packaged_root
from tokengate.errors import ConfigError

_ENV = os.environ.get("TOKENGATE_TESTVECTORS")
VECTORS = (
    Path(_ENV) / "attestation" / "nitro" if _ENV else Path(__file__).parent / "vectors" / "nitro"
)
BETA = (VECTORS / "evervault_beta_2022-10-13.cose").read_bytes()
GA = (VECTORS / "evervault_ga_2023-09-18.cose").read_bytes()
AWS_ROOT_PEM = (VECTORS / "aws_nitro_root_g1.pem").read_bytes()
BETA_NOW = datetime(2022, 10, 13, 10, 0, tzinfo=UTC)  # window 08:57:59 .. 11:58:02
GA_NOW = datetime(2023, 9, 18, 16, 0, tzinfo=UTC)  # window 14:37:09 .. 17:37:12
BETA_PCR0 = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b"
NONE = Expectation()
DEFAULT = Policy()
DEBUG_OK = Policy(allow_debug=True)


def refused(check: str, evidence: bytes, verifier: NitroVerifier | None = None, **kw: Any) -> None:
    """Verifying ``evidence`` raises EvidenceRefused naming ``check``."""
    kw.setdefault("expect", NONE)
    kw.setdefault("policy", DEFAULT)
    with pytest.raises(EvidenceRefused) as info:
        (verifier or NitroVerifier()).verify(evidence, **kw)
    assert info.value.check == check, info.value.detail


# --- a throwaway PKI (root -> intermediate -> leaf, P-384) and documents signed by its leaf ---

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Pki:
    root_pem: bytes
    root_der: bytes
    inter_der: bytes
    leaf_der: bytes
    leaf_key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    window: tuple[datetime, datetime],
    sign_usage: bool = True,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=sign_usage and not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not sign_usage,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if issuer:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
        builder = builder.add_extension(aki, critical=False)
    return builder.sign(issuer_key, hashes.SHA384())


def make_pki(*, leaf_curve: ec.EllipticCurve | None = None, sign_usage: bool = True) -> Pki:
    """A fresh CA chain valid around T0 (the leaf for T0-1h .. T0+2h, like Nitro's ~3 h)."""
    long = (T0 - timedelta(days=365), T0 + timedelta(days=365))
    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(leaf_curve or ec.SECP384R1())
    root = _cert("test-root.nitro-enclaves", root_key, None, ca=True, window=long)
    inter = _cert(
        "test-inter", inter_key, ("test-root.nitro-enclaves", root_key), ca=True, window=long
    )
    leaf = _cert(
        "i-test-enc0",
        leaf_key,
        ("test-inter", inter_key),
        ca=False,
        window=(T0 - timedelta(hours=1), T0 + timedelta(hours=2)),
        sign_usage=sign_usage,
    )
    return Pki(
        root_pem=root.public_bytes(Encoding.PEM),
        root_der=root.public_bytes(Encoding.DER),
        inter_der=inter.public_bytes(Encoding.DER),
        leaf_der=leaf.public_bytes(Encoding.DER),
        leaf_key=leaf_key,
    )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def pinned(pki: Pki) -> NitroVerifier:
    """A verifier pinned to the throwaway root."""
    return NitroVerifier(root_pem=pki.root_pem)


class _Drop:
    """A field value meaning "leave the field out" (a stable repr: xdist workers agree)."""

    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()
WORKER_KEY = b"0*0\x05\x06\x03+en\x03!\x00" + bytes(range(32))  # an X25519 SPKI, DER
PCRS = {i: hashlib.sha384(b"pcr%d" % i).digest() for i in range(16)}


def build(
    pki: Pki,
    *,
    alg: object = -35,
    protected: dict[int, object] | None = None,
    unprotected: dict[int, object] | None = None,
    tag: int | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
    **fields: object,
) -> bytes:
    """A Nitro-shaped COSE_Sign1 signed by the test leaf; ``fields`` override the payload."""
    payload: dict[str, object] = {
        "module_id": "i-test-enc0",
        "digest": "SHA384",
        "timestamp": int((T0 - timedelta(seconds=10)).timestamp() * 1000),
        "pcrs": PCRS,
        "certificate": pki.leaf_der,
        "cabundle": [pki.root_der, pki.inter_der],
        "public_key": WORKER_KEY,
        "user_data": b"job=luhn",
        "nonce": b"n" * 32,
    }
    payload.update(fields)
    payload = {k: v for k, v in payload.items() if v is not DROP}
    header = cbor2.dumps(protected if protected is not None else {1: alg})
    body = cbor2.dumps(payload)
    tbs = cbor2.dumps(["Signature1", header, b"", body])
    r, s = decode_dss_signature((signer or pki.leaf_key).sign(tbs, ec.ECDSA(hashes.SHA384())))
    message = [header, unprotected or {}, body, r.to_bytes(48, "big") + s.to_bytes(48, "big")]
    return cbor2.dumps(cbor2.CBORTag(tag, message) if tag is not None else message)


# --- the real samples ---


def test_beta_verifies_inside_its_window_with_its_claims() -> None:
    claims = NitroVerifier().verify(BETA, expect=NONE, now=BETA_NOW, policy=DEFAULT)
    assert claims.platform is Platform.NITRO
    assert claims.measurements["pcr0"] == BETA_PCR0
    assert claims.measurements["pcr0"].startswith("f4d48b81")
    assert sorted(claims.measurements) == sorted(f"pcr{i}" for i in range(16))
    assert all(v == v.lower() and len(v) == 96 for v in claims.measurements.values())
    assert claims.debug is False
    assert claims.tcb_status == "UpToDate"
    assert claims.public_key is None
    assert claims.report_data == b""
    assert claims.nonce is not None
    assert len(claims.nonce) == 256
    assert claims.issued_at == datetime(2022, 10, 13, 8, 58, 2, 136000, tzinfo=UTC)
    assert claims.details["module_id"] == "i-020b6af9246d90e92-enc0183d09086c24190"
    assert claims.details["root_sha256"] == AWS_NITRO_ROOT_G1_SHA256


def test_ga_is_debug_and_refused_by_default() -> None:
    refused("debug", GA, now=GA_NOW)


def test_ga_is_accepted_when_the_policy_allows_debug() -> None:
    claims = NitroVerifier().verify(GA, expect=NONE, now=GA_NOW, policy=DEBUG_OK)
    assert claims.debug is True
    assert {claims.measurements[f"pcr{i}"] for i in range(3)} == {"00" * 48}
    assert len(claims.report_data) == 91
    assert claims.issued_at == datetime(2023, 9, 18, 15, 3, 30, 860000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("evidence", "now"),
    [
        (BETA, datetime(2022, 10, 13, 8, 57, 59, tzinfo=UTC)),  # first second of the leaf
        (BETA, datetime(2022, 10, 13, 11, 58, 2, tzinfo=UTC)),  # last second of the leaf
        (GA, datetime(2023, 9, 18, 15, 2, 31, tzinfo=UTC)),  # document 59.86 s ahead of us
        (GA, datetime(2023, 9, 18, 17, 37, 12, tzinfo=UTC)),
    ],
)
def test_real_samples_verify_at_the_edges_of_their_windows(evidence: bytes, now: datetime) -> None:
    NitroVerifier().verify(evidence, expect=NONE, now=now, policy=DEBUG_OK)


@pytest.mark.parametrize(
    ("evidence", "now"),
    [
        (BETA, datetime(2022, 10, 13, 8, 57, 58, tzinfo=UTC)),  # before the leaf
        (BETA, datetime(2022, 10, 13, 11, 58, 3, tzinfo=UTC)),  # after the leaf
        (BETA, datetime(2022, 10, 1, tzinfo=UTC)),  # before the regional certificate
        (BETA, datetime(2026, 1, 1, tzinfo=UTC)),  # long expired
        (GA, datetime(2023, 9, 18, 14, 37, 8, tzinfo=UTC)),
        (GA, datetime(2023, 9, 18, 17, 37, 13, tzinfo=UTC)),
        (GA, datetime(2023, 9, 18, 15, 2, 29, tzinfo=UTC)),  # document 61.86 s in our future
    ],
)
def test_real_samples_are_refused_outside_their_windows(evidence: bytes, now: datetime) -> None:
    refused("window", evidence, now=now, policy=DEBUG_OK)


def _beta_positions() -> list[int]:
    """Bit positions over every region: envelope heads, protected header, payload, signature."""
    envelope = range(10 * 8)  # array head, protected header, unprotected header, payload head
    payload = range(10 * 8, (len(BETA) - 98) * 8, 31 * 8 + 3)  # a stride through the payload
    signature = range((len(BETA) - 98) * 8, len(BETA) * 8, 5)  # signature head and r || s
    return [*envelope, *payload, *signature]


@pytest.mark.parametrize("bit", _beta_positions())
def test_any_flipped_bit_of_beta_is_refused(bit: int) -> None:
    tampered = bytearray(BETA)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EvidenceRefused):
        NitroVerifier().verify(bytes(tampered), expect=NONE, now=BETA_NOW, policy=DEFAULT)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=len(GA) * 8 - 1))
def test_any_flipped_bit_of_ga_is_refused(bit: int) -> None:
    tampered = bytearray(GA)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EvidenceRefused):
        NitroVerifier().verify(bytes(tampered), expect=NONE, now=GA_NOW, policy=DEBUG_OK)


def test_beta_against_another_root_is_refused(pki: Pki) -> None:
    refused("root", BETA, NitroVerifier(root_pem=pki.root_pem), now=BETA_NOW)


def test_beta_nonce_binds_the_real_nonce() -> None:
    nonce = NitroVerifier().verify(BETA, expect=NONE, now=BETA_NOW, policy=DEFAULT).nonce
    assert nonce is not None
    claims = NitroVerifier().verify(
        BETA, expect=Expectation(nonce=nonce), now=BETA_NOW, policy=DEFAULT
    )
    assert claims.nonce == nonce


@pytest.mark.parametrize("other", ["flip-last", "zeros", "short", "empty"])
def test_beta_with_another_nonce_is_refused(other: str) -> None:
    nonce = NitroVerifier().verify(BETA, expect=NONE, now=BETA_NOW, policy=DEFAULT).nonce
    assert nonce is not None
    wrong = {
        "flip-last": nonce[:-1] + bytes([nonce[-1] ^ 1]),
        "zeros": bytes(256),
        "short": nonce[:32],
        "empty": b"",
    }[other]
    refused("nonce", BETA, now=BETA_NOW, expect=Expectation(nonce=wrong))


def test_beta_matches_a_policy_naming_its_pcr0() -> None:
    policy = Policy(measurements={"pcr0": frozenset({BETA_PCR0, "11" * 48})})
    NitroVerifier().verify(BETA, expect=NONE, now=BETA_NOW, policy=policy)


@pytest.mark.parametrize(
    "measurements",
    [
        {"pcr0": frozenset({"11" * 48})},
        {"pcr0": frozenset({BETA_PCR0}), "pcr8": frozenset({"00" * 48})},
        {"pcr20": frozenset({"00" * 48})},  # a PCR the document does not carry
    ],
)
def test_beta_with_unknown_measurements_is_refused(measurements: dict[str, frozenset[str]]) -> None:
    refused("measurement", BETA, now=BETA_NOW, policy=Policy(measurements=measurements))


def test_beta_user_data_expected_but_absent_is_refused() -> None:
    refused("report_data", BETA, now=BETA_NOW, expect=Expectation(report_data=b"x"))


def test_ga_user_data_binds_its_real_value() -> None:
    data = NitroVerifier().verify(GA, expect=NONE, now=GA_NOW, policy=DEBUG_OK).report_data
    expect = Expectation(report_data=data)
    assert (
        NitroVerifier().verify(GA, expect=expect, now=GA_NOW, policy=DEBUG_OK).report_data == data
    )
    refused(
        "report_data", GA, now=GA_NOW, policy=DEBUG_OK, expect=Expectation(report_data=data[1:])
    )


def test_beta_public_key_expected_but_absent_is_refused() -> None:
    refused("public_key", BETA, now=BETA_NOW, expect=Expectation(public_key=WORKER_KEY))


def test_tagged_beta_verifies_and_another_tag_is_refused() -> None:
    for tag, ok in ((18, True), (98, False), (61, False)):
        tagged = cbor2.dumps(cbor2.CBORTag(tag, cbor2.loads(BETA)))
        if ok:
            NitroVerifier().verify(tagged, expect=NONE, now=BETA_NOW, policy=DEFAULT)
        else:
            refused("format", tagged, now=BETA_NOW)


@pytest.mark.parametrize("suffix", [b"\x00", b"\xa0", BETA])
def test_beta_with_trailing_bytes_is_refused(suffix: bytes) -> None:
    refused("format", BETA + suffix, now=BETA_NOW)


def test_tcb_uptodate_must_be_accepted_by_the_policy() -> None:
    NitroVerifier().verify(
        BETA,
        expect=NONE,
        now=BETA_NOW,
        policy=Policy(accepted_tcb=frozenset({"UpToDate", "OutOfDate"})),
    )
    refused("tcb", BETA, now=BETA_NOW, policy=Policy(accepted_tcb=frozenset({"OutOfDate"})))


# --- the pinned root and the constructor ---


def test_packaged_root_is_the_published_aws_root() -> None:
    root = load_packaged_root()
    assert root.public_bytes(Encoding.PEM) == x509.load_pem_x509_certificate(
        AWS_ROOT_PEM
    ).public_bytes(Encoding.PEM)
    assert hashlib.sha256(root.public_bytes(Encoding.DER)).hexdigest() == AWS_NITRO_ROOT_G1_SHA256


def test_a_packaged_root_that_is_not_the_pinned_one_is_refused(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "aws_nitro_root_g1.pem").write_bytes(pki.root_pem)
    monkeypatch.setattr("tee.nitro.resources", SimpleNamespace(files=lambda _package: tmp_path))
    with pytest.raises(TeeError, match="packaged root"):
        NitroVerifier()


@pytest.mark.parametrize("root_pem", [b"", b"not a pem", AWS_ROOT_PEM[:200]])
def test_a_root_pem_that_is_not_a_certificate_is_a_config_error(root_pem: bytes) -> None:
    with pytest.raises(ConfigError):
        NitroVerifier(root_pem=root_pem)


def test_a_negative_clock_skew_is_a_config_error() -> None:
    NitroVerifier(max_clock_skew=timedelta(0))
    with pytest.raises(ConfigError):
        NitroVerifier(max_clock_skew=timedelta(seconds=-1))


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        NitroVerifier().verify(BETA, expect=NONE, now=BETA_NOW.replace(tzinfo=None), policy=DEFAULT)


# --- documents built here: bindings, algorithms, shapes, timestamps ---

FULL = Expectation(nonce=b"n" * 32, public_key=WORKER_KEY, report_data=b"job=luhn")


def test_a_built_document_verifies_with_every_binding(pki: Pki, pinned: NitroVerifier) -> None:
    claims = pinned.verify(build(pki), expect=FULL, now=T0, policy=DEFAULT)
    assert claims.public_key == WORKER_KEY
    assert claims.report_data == b"job=luhn"
    assert claims.nonce == b"n" * 32
    assert claims.debug is False
    assert claims.measurements["pcr2"] == PCRS[2].hex()
    assert claims.issued_at == T0 - timedelta(seconds=10)


def test_a_built_document_against_the_aws_root_is_refused(pki: Pki) -> None:
    refused("root", build(pki), now=T0, expect=FULL)


def test_a_bundle_claiming_the_aws_root_but_chaining_elsewhere_is_refused(pki: Pki) -> None:
    aws_root_der = x509.load_pem_x509_certificate(AWS_ROOT_PEM).public_bytes(Encoding.DER)
    refused("chain", build(pki, cabundle=[aws_root_der, pki.inter_der]), now=T0)


def test_a_document_signed_by_another_pki_is_refused(pki: Pki, pinned: NitroVerifier) -> None:
    other = make_pki()
    # its own chain, the pinned root's place taken by another root
    refused("root", build(other), pinned, now=T0)
    # the pinned root first, but the rest of the chain from elsewhere
    refused("chain", build(other, cabundle=[pki.root_der, other.inter_der]), pinned, now=T0)
    # our chain, signed by a key that is not the leaf's
    refused("signature", build(pki, signer=other.leaf_key), pinned, now=T0)


@pytest.mark.parametrize(
    ("field", "check"),
    [("nonce", "nonce"), ("public_key", "public_key"), ("user_data", "report_data")],
)
@pytest.mark.parametrize("how", ["other", "absent", "null"])
def test_each_binding_is_refused_when_the_document_does_not_carry_it(
    pki: Pki, pinned: NitroVerifier, field: str, check: str, how: str
) -> None:
    values: dict[str, Any] = {"other": b"something else", "absent": DROP, "null": None}
    refused(check, build(pki, **{field: values[how]}), pinned, now=T0, expect=FULL)


@pytest.mark.parametrize("how", ["absent", "null"])
def test_unexpected_bindings_may_be_absent(pki: Pki, pinned: NitroVerifier, how: str) -> None:
    value = DROP if how == "absent" else None
    doc = build(pki, nonce=value, public_key=value, user_data=value)
    claims = pinned.verify(doc, expect=NONE, now=T0, policy=DEFAULT)
    assert (claims.nonce, claims.public_key, claims.report_data) == (None, None, b"")


def test_the_cose_sign1_tag_is_accepted_and_others_refused(pki: Pki, pinned: NitroVerifier) -> None:
    pinned.verify(build(pki, tag=18), expect=FULL, now=T0, policy=DEFAULT)
    refused("format", build(pki, tag=98), pinned, now=T0)
    refused("format", build(pki, tag=17), pinned, now=T0)


@pytest.mark.parametrize("alg", [-7, -36, -37, -8, 1, "ES384", -35.0, True, None])
def test_an_algorithm_other_than_es384_is_refused(
    pki: Pki, pinned: NitroVerifier, alg: object
) -> None:
    refused("signature", build(pki, alg=alg), pinned, now=T0)


@pytest.mark.parametrize(
    ("protected", "unprotected"),
    [
        ({1: -35, 2: [99]}, None),  # a critical header we do not understand
        ({1: -35}, {1: -35}),  # anything in the unsigned header
        ({1: -35}, {4: b"kid"}),
    ],
)
def test_headers_beyond_alg_are_refused(
    pki: Pki,
    pinned: NitroVerifier,
    protected: dict[int, object],
    unprotected: dict[int, object] | None,
) -> None:
    refused("format", build(pki, protected=protected, unprotected=unprotected), pinned, now=T0)


@pytest.mark.parametrize("digest", ["SHA256", "SHA512", "sha384", "", b"SHA384", None])
def test_a_digest_other_than_sha384_is_refused(
    pki: Pki, pinned: NitroVerifier, digest: object
) -> None:
    refused("format", build(pki, digest=digest), pinned, now=T0)


@pytest.mark.parametrize(
    "fields",
    [
        {"module_id": ""},
        {"module_id": DROP},
        {"module_id": b"i-test"},
        {"timestamp": 0},
        {"timestamp": -1},
        {"timestamp": True},
        {"timestamp": "1735732790000"},
        {"timestamp": 2**64},
        {"timestamp": 2**62},  # a uint64, but past datetime's year 9999
        {"pcrs": {}},
        {"pcrs": {**PCRS, 0: bytes(32)}},  # a SHA-256-sized PCR under digest SHA384
        {"pcrs": {**PCRS, 32: bytes(48)}},
        {"pcrs": {**PCRS, "16": bytes(48)}},
        {"pcrs": {i: PCRS[i] for i in (0, 1, 3)}},  # no PCR2: debug mode cannot be decided
        {"pcrs": [PCRS[0]]},
        {"certificate": b""},
        {"certificate": b"\x30" * 1025},
        {"certificate": b"not der"},
        {"cabundle": []},
        {"cabundle": DROP},
        {"cabundle": b"not a list"},
        {"nonce": b"n" * 513},
        {"user_data": b"u" * 513},
        {"public_key": b""},
        {"public_key": b"k" * 1025},
        {"extra": b"field"},
    ],
    ids=repr,
)
def test_malformed_payloads_are_refused(
    pki: Pki, pinned: NitroVerifier, fields: dict[str, Any]
) -> None:
    refused("format", build(pki, **fields), pinned, now=T0)


@pytest.mark.parametrize("payload", [[1, 2], b"bytes", {1: "one"}, 7])
def test_a_payload_that_is_not_a_text_keyed_map_is_refused(
    pki: Pki, pinned: NitroVerifier, payload: object
) -> None:
    message = cbor2.loads(build(pki))
    message[2] = cbor2.dumps(payload)
    refused("format", cbor2.dumps(message), pinned, now=T0)


@pytest.mark.parametrize(
    "envelope",
    [
        b"",
        b"\x84",
        cbor2.dumps([b"\xa1\x018\x22", {}, b"\xa0"]),
        cbor2.dumps([b"\xa1\x018\x22", {}, "payload", b"sig"]),
        cbor2.dumps({"not": "an array"}),
        b"\x81" * 1000,  # nested past the decoder's depth limit
    ],
)
def test_malformed_envelopes_are_refused(pinned: NitroVerifier, envelope: bytes) -> None:
    refused("format", envelope, pinned, now=T0)


def test_an_oversized_document_is_refused(pki: Pki, pinned: NitroVerifier) -> None:
    refused("format", build(pki) + bytes(32 * 1024), pinned, now=T0)


@pytest.mark.parametrize("length", [95, 97, 0])
def test_a_signature_of_the_wrong_size_is_refused(
    pki: Pki, pinned: NitroVerifier, length: int
) -> None:
    message = cbor2.loads(build(pki))
    message[3] = (message[3] * 2)[:length]
    refused("signature", cbor2.dumps(message), pinned, now=T0)


def test_debug_mode_is_refused_unless_allowed(pki: Pki, pinned: NitroVerifier) -> None:
    doc = build(pki, pcrs={**PCRS, 0: bytes(48), 1: bytes(48), 2: bytes(48)})
    refused("debug", doc, pinned, now=T0)
    assert pinned.verify(doc, expect=FULL, now=T0, policy=DEBUG_OK).debug is True


@pytest.mark.parametrize("zero", [(0,), (0, 1), (1, 2), (2,)])
def test_some_zero_pcrs_are_not_debug_mode(
    pki: Pki, pinned: NitroVerifier, zero: tuple[int, ...]
) -> None:
    doc = build(pki, pcrs={**PCRS, **{i: bytes(48) for i in zero}})
    assert pinned.verify(doc, expect=FULL, now=T0, policy=DEFAULT).debug is False


def test_the_leaf_must_hold_a_p384_signing_key(pki: Pki) -> None:
    p256 = make_pki(leaf_curve=ec.SECP256R1())
    refused("chain", build(p256), NitroVerifier(root_pem=p256.root_pem), now=T0)
    no_sign = make_pki(sign_usage=False)
    refused("chain", build(no_sign), NitroVerifier(root_pem=no_sign.root_pem), now=T0)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@pytest.mark.parametrize(
    ("issued", "ok"),
    [
        (T0 - timedelta(hours=1), True),  # the leaf's first second
        (T0 - timedelta(hours=1, milliseconds=1), False),  # before the leaf existed
        (T0 + timedelta(seconds=60), True),  # as far ahead as the skew allows
        (T0 + timedelta(seconds=60, milliseconds=1), False),  # further in our future
        (T0 + timedelta(hours=2, milliseconds=1), False),  # after the leaf expired
    ],
)
def test_the_document_timestamp_lies_in_the_leaf_window_and_not_ahead_of_now(
    pki: Pki, pinned: NitroVerifier, issued: datetime, ok: bool
) -> None:
    doc = build(pki, timestamp=_ms(issued))
    if ok:
        assert pinned.verify(doc, expect=FULL, now=T0, policy=DEFAULT).issued_at == issued
    else:
        refused("window", doc, pinned, now=T0)


def test_the_clock_skew_is_configurable(pki: Pki) -> None:
    doc = build(pki, timestamp=_ms(T0 + timedelta(seconds=5)))
    strict = NitroVerifier(root_pem=pki.root_pem, max_clock_skew=timedelta(0))
    refused("window", doc, strict, now=T0)
    strict.verify(doc, expect=FULL, now=T0 + timedelta(seconds=5), policy=DEFAULT)


@pytest.mark.parametrize(("age", "ok"), [(299, True), (300, True), (301, False)])
def test_max_age_seconds_bounds_how_old_a_document_may_be(
    pki: Pki, pinned: NitroVerifier, age: int, ok: bool
) -> None:
    doc = build(pki, timestamp=_ms(T0 - timedelta(seconds=age)))
    policy = Policy(options={"max_age_seconds": 300})
    if ok:
        pinned.verify(doc, expect=FULL, now=T0, policy=policy)
    else:
        refused("window", doc, pinned, now=T0, policy=policy)


@pytest.mark.parametrize(
    "options",
    [
        {"max_age": 300},
        {"min_tcb": 1},
        {"max_age_seconds": 0},
        {"max_age_seconds": "300"},
        {"max_age_seconds": True},
    ],
)
def test_unknown_or_bad_options_are_refused(
    pki: Pki, pinned: NitroVerifier, options: dict[str, object]
) -> None:
    refused("policy", build(pki), pinned, now=T0, policy=Policy(options=options))


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (T0 - timedelta(seconds=10), True),
        (T0 + timedelta(hours=2), True),
        (T0 - timedelta(hours=1, seconds=1), False),
        (T0 + timedelta(hours=2, seconds=1), False),
    ],
)
def test_now_must_lie_inside_the_chain(
    pki: Pki, pinned: NitroVerifier, now: datetime, ok: bool
) -> None:
    if ok:
        pinned.verify(build(pki), expect=FULL, now=now, policy=DEFAULT)
    else:
        refused("window", build(pki), pinned, now=now, expect=FULL)


def test_measurement_policy_on_a_built_document(pki: Pki, pinned: NitroVerifier) -> None:
    accept = Policy(
        measurements={"pcr0": frozenset({PCRS[0].hex()}), "pcr8": frozenset({PCRS[8].hex()})}
    )
    pinned.verify(build(pki), expect=FULL, now=T0, policy=accept)
    changed = build(pki, pcrs={**PCRS, 8: hashlib.sha384(b"other signer").digest()})
    refused("measurement", changed, pinned, now=T0, policy=accept)


def _beta_with_negative_leaf_serial() -> bytes:
    message = cbor2.loads(BETA)
    payload = cbor2.loads(message[2])
    leaf = bytearray(payload["certificate"])
    at = leaf.index(bytes.fromhex("02100183d090"))  # INTEGER, 16 bytes, the serial 0x0183d090...
    leaf[at + 2] |= 0x80  # the serial's sign bit: a negative serial number
    payload["certificate"] = bytes(leaf)
    message[2] = cbor2.dumps(payload)
    return cbor2.dumps(message)


def test_a_negative_serial_number_is_refused_where_warnings_are_errors() -> None:
    refused("format", _beta_with_negative_leaf_serial(), now=BETA_NOW)


@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
def test_a_negative_serial_number_is_refused_where_warnings_only_warn() -> None:
    refused("format", _beta_with_negative_leaf_serial(), now=BETA_NOW)
