"""The simulated TEE: a development key signs evidence; the verifier checks every binding."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tee.attestation import Expectation, Platform, Policy
from tee.errors import EvidenceRefused
from tee.sim import KEY_FILE, SimReport, SimVerifier, load_or_create_key, sign_evidence

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MEASUREMENT = bytes(range(32))
REPORT = SimReport(
    measurement=MEASUREMENT, report_data=b"\x01" * 64, public_key=b"\x02" * 32, nonce=b"n" * 16
)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def verify(key: Ed25519PrivateKey, evidence: bytes, **kw: object) -> object:
    expect = kw.pop("expect", Expectation())
    policy = kw.pop("policy", Policy())
    now = kw.pop("now", NOW)
    return SimVerifier(key.public_key()).verify(
        evidence,
        expect=expect,  # type: ignore[arg-type]
        now=now,  # type: ignore[arg-type]
        policy=policy,  # type: ignore[arg-type]
    )


def test_evidence_verifies_with_its_bindings(key: Ed25519PrivateKey) -> None:
    evidence = sign_evidence(key, REPORT, now=NOW)
    expect = Expectation(nonce=REPORT.nonce, report_data=REPORT.report_data, public_key=b"\2" * 32)
    claims = SimVerifier(key.public_key()).verify(evidence, expect=expect, now=NOW, policy=Policy())
    assert claims.platform is Platform.SIM
    assert claims.measurements == {"measurement": MEASUREMENT.hex()}
    assert claims.public_key == REPORT.public_key
    assert claims.tcb_status == "UpToDate"
    assert not claims.debug


@pytest.mark.parametrize(
    ("expect", "check"),
    [
        (Expectation(nonce=b"x" * 16), "nonce"),
        (Expectation(report_data=b"\x00" * 64), "report_data"),
        (Expectation(public_key=b"\x03" * 32), "public_key"),
    ],
)
def test_a_wrong_binding_is_refused(
    key: Ed25519PrivateKey, expect: Expectation, check: str
) -> None:
    evidence = sign_evidence(key, REPORT, now=NOW)
    with pytest.raises(EvidenceRefused) as info:
        SimVerifier(key.public_key()).verify(evidence, expect=expect, now=NOW, policy=Policy())
    assert info.value.check == check


@pytest.mark.parametrize(
    ("delta", "ok"),
    [(timedelta(0), True), (timedelta(minutes=4), True), (timedelta(minutes=6), False),
     (timedelta(minutes=-1), False)],
)  # fmt: skip
def test_window(key: Ed25519PrivateKey, delta: timedelta, ok: bool) -> None:
    evidence = sign_evidence(key, REPORT, now=NOW)
    verifier = SimVerifier(key.public_key())
    if ok:
        verifier.verify(evidence, expect=Expectation(), now=NOW + delta, policy=Policy())
    else:
        with pytest.raises(EvidenceRefused, match="window"):
            verifier.verify(evidence, expect=Expectation(), now=NOW + delta, policy=Policy())


def test_every_flipped_bit_is_refused(key: Ed25519PrivateKey) -> None:
    evidence = sign_evidence(key, REPORT, now=NOW)
    verifier = SimVerifier(key.public_key())
    for i in range(0, len(evidence) * 8, 7):
        tampered = bytearray(evidence)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(EvidenceRefused):
            verifier.verify(bytes(tampered), expect=Expectation(), now=NOW, policy=Policy())


def test_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    evidence = sign_evidence(Ed25519PrivateKey.generate(), REPORT, now=NOW)
    with pytest.raises(EvidenceRefused, match="signature"):
        verify(key, evidence)


def test_debug_needs_the_policy(key: Ed25519PrivateKey) -> None:
    evidence = sign_evidence(key, SimReport(measurement=MEASUREMENT, debug=True), now=NOW)
    with pytest.raises(EvidenceRefused, match="debug"):
        verify(key, evidence)
    verify(key, evidence, policy=Policy(allow_debug=True))


def test_unknown_measurement_is_refused(key: Ed25519PrivateKey) -> None:
    evidence = sign_evidence(key, REPORT, now=NOW)
    other = Policy(measurements={"measurement": frozenset({"00" * 32})})
    with pytest.raises(EvidenceRefused, match="measurement"):
        verify(key, evidence, policy=other)
    same = Policy(measurements={"measurement": frozenset({MEASUREMENT.hex()})})
    verify(key, evidence, policy=same)


@pytest.mark.parametrize("evidence", [b"", b"no signature", b"{}\n00", b"\n" + b"00" * 64])
def test_garbage_is_refused(key: Ed25519PrivateKey, evidence: bytes) -> None:
    with pytest.raises(EvidenceRefused):
        verify(key, evidence)


def test_development_key_is_created_once_and_private(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    second = load_or_create_key(tmp_path)
    assert first.public_key().public_bytes_raw() == second.public_key().public_bytes_raw()
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
