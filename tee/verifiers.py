"""Choosing a verifier: by the platform the registry records for a TEE, never by the evidence.

Real platforms chain to roots pinned in the package (``tee/roots``). The
simulated platform is refused unless the caller passes
``insecure_simulated_tee=True`` together with the development public key
(see :mod:`tee.sim`); ``mode: production`` never does.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tee.attestation import Platform, Verifier
from tee.dcap import SgxVerifier, TdxVerifier
from tee.errors import EvidenceRefused
from tee.nitro import NitroVerifier
from tee.sev_snp import SevSnpVerifier
from tee.sim import SimVerifier


def verifier_for(
    platform: Platform | str,
    *,
    insecure_simulated_tee: bool = False,
    sim_key: Ed25519PublicKey | None = None,
) -> Verifier:
    """The verifier of ``platform`` (as recorded, not as claimed by the evidence)."""
    try:
        chosen = Platform(platform)
    except ValueError as e:
        raise EvidenceRefused("platform", "unknown platform") from e
    if chosen is Platform.NITRO:
        return NitroVerifier()
    if chosen is Platform.SEV_SNP:
        return SevSnpVerifier()
    if chosen is Platform.TDX:
        return TdxVerifier()
    if chosen is Platform.SGX:
        return SgxVerifier()
    if not insecure_simulated_tee or sim_key is None:
        raise EvidenceRefused(
            "platform", "simulated TEE refused: set insecure_simulated_tee to allow it"
        )
    return SimVerifier(sim_key)
