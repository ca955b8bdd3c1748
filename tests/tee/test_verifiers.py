"""verifier_for: the recorded platform picks the verifier; the simulated one needs consent."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tee.attestation import Platform
from tee.dcap import SgxVerifier, TdxVerifier
from tee.errors import EvidenceRefused
from tee.nitro import NitroVerifier
from tee.sev_snp import SevSnpVerifier
from tee.sim import SimVerifier
from tee.verifiers import verifier_for


@pytest.mark.parametrize(
    ("platform", "kind"),
    [
        (Platform.NITRO, NitroVerifier),
        ("sev-snp", SevSnpVerifier),
        ("tdx", TdxVerifier),
        ("sgx", SgxVerifier),
    ],
)
def test_each_platform_has_its_verifier(platform: str, kind: type) -> None:
    verifier = verifier_for(platform)
    assert isinstance(verifier, kind)
    assert verifier.platform == Platform(platform)


def test_simulated_tee_needs_the_insecure_switch_and_key() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(EvidenceRefused, match="insecure_simulated_tee"):
        verifier_for("sim", sim_key=key)
    with pytest.raises(EvidenceRefused, match="insecure_simulated_tee"):
        verifier_for("sim", insecure_simulated_tee=True)
    assert isinstance(verifier_for("sim", insecure_simulated_tee=True, sim_key=key), SimVerifier)


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(EvidenceRefused, match="platform"):
        verifier_for("sev")
