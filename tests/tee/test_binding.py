"""tee.binding: one spelling of the nonce/key binding for every platform."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tee.attestation import Expectation, Platform, Policy
from tee.binding import expectation, report_data
from tee.errors import BindingError, EvidenceRefused
from tee.sim import SimReport, SimVerifier, sign_evidence

NONCE = bytes(range(32))
KEY = bytes(range(32, 64))
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_report_data_known_answer() -> None:
    expected = hashlib.sha512(b"tokengate-tee-binding/1\x00" + NONCE + KEY).digest()
    assert report_data(NONCE, KEY) == expected
    assert len(report_data(NONCE, KEY)) == 64
    # Pinned so an accidental change of the domain or order is caught.
    assert (
        report_data(b"\0" * 32, b"\0" * 32).hex()[:16]
        == (hashlib.sha512(b"tokengate-tee-binding/1\x00" + b"\0" * 64).hexdigest()[:16])
    )


def test_report_data_separates_nonce_and_key() -> None:
    assert report_data(NONCE, KEY) != report_data(KEY, NONCE)
    assert report_data(NONCE, KEY) != report_data(NONCE, bytes(32))


@pytest.mark.parametrize(
    ("nonce", "key"),
    [(b"\0" * 31, KEY), (b"\0" * 33, KEY), (NONCE, b"\0" * 31), (NONCE, b""), (b"", KEY)],
    ids=["nonce31", "nonce33", "key31", "key0", "nonce0"],
)
def test_wrong_sizes_are_refused(nonce: bytes, key: bytes) -> None:
    with pytest.raises(BindingError):
        report_data(nonce, key)
    with pytest.raises(BindingError):
        expectation(Platform.SIM, nonce, key)


@pytest.mark.parametrize(
    ("platform", "want"),
    [
        (Platform.NITRO, Expectation(nonce=NONCE, public_key=KEY)),
        (Platform.SEV_SNP, Expectation(report_data=report_data(NONCE, KEY))),
        (Platform.TDX, Expectation(report_data=report_data(NONCE, KEY))),
        (Platform.SGX, Expectation(report_data=report_data(NONCE, KEY))),
        (
            Platform.SIM,
            Expectation(nonce=NONCE, public_key=KEY, report_data=report_data(NONCE, KEY)),
        ),
    ],
    ids=lambda v: v.value if isinstance(v, Platform) else "",
)
def test_expectation_per_platform(platform: Platform, want: Expectation) -> None:
    assert expectation(platform, NONCE, KEY) == want
    assert expectation(platform.value, NONCE, KEY) == want


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(BindingError):
        expectation("tpm", NONCE, KEY)


def _sim(nonce: bytes, key: bytes, *, rd: bytes | None = None) -> tuple[bytes, SimVerifier]:
    signer = Ed25519PrivateKey.generate()
    report = SimReport(
        measurement=b"\1" * 48,
        report_data=report_data(nonce, key) if rd is None else rd,
        public_key=key,
        nonce=nonce,
    )
    return sign_evidence(signer, report, now=NOW), SimVerifier(signer.public_key())


def test_sim_evidence_made_with_the_binding_verifies() -> None:
    evidence, verifier = _sim(NONCE, KEY)
    claims = verifier.verify(
        evidence, expect=expectation(Platform.SIM, NONCE, KEY), now=NOW, policy=Policy()
    )
    assert claims.public_key == KEY


@pytest.mark.parametrize(
    ("nonce", "key", "rd", "check"),
    [
        (b"\x09" * 32, KEY, None, "nonce"),
        (NONCE, b"\x09" * 32, None, "report_data"),
        (NONCE, KEY, b"\0" * 64, "report_data"),
    ],
    ids=["other-nonce", "other-key", "report-data-unbound"],
)
def test_sim_evidence_with_another_binding_is_refused(
    nonce: bytes, key: bytes, rd: bytes | None, check: str
) -> None:
    evidence, verifier = _sim(nonce, key, rd=rd)
    with pytest.raises(EvidenceRefused) as e:
        verifier.verify(
            evidence, expect=expectation(Platform.SIM, NONCE, KEY), now=NOW, policy=Policy()
        )
    assert e.value.check == check
