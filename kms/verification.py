"""The KMS's own check of a worker's evidence against its registry entry.

Rules (the second, independent check of docs/tee-protocol.md):
- The verifier comes from the platform the **registry** records
  (:func:`tee.verifiers.verifier_for`), never from the evidence.
- The evidence must bind the nonce the KMS issued and the worker's public
  key (:func:`tee.binding.expectation`).
- The entry's policy (measurements, debug, accepted TCB statuses) is handed to
  the verifier and checked again on the returned claims, so a verifier that
  forgot one rule still cannot let the evidence through.
- The simulated platform needs ``insecure_simulated_tee`` and the development
  public key; otherwise it is refused like an unknown platform.

Verification is CPU work (certificate chains, DCAP collateral): callers run
:meth:`EvidenceChecker.check` in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tee.attestation import Claims, check_measurements
from tee.binding import expectation
from tee.errors import EvidenceRefused
from tee.registry import TeeEntry
from tee.sim import load_public_key
from tee.verifiers import verifier_for


@dataclass(frozen=True, slots=True)
class EvidenceChecker:
    """Verifies evidence as its registry entry demands."""

    insecure_simulated_tee: bool = False
    sim_key: Ed25519PublicKey | None = None

    def check(
        self, entry: TeeEntry, evidence: bytes, *, nonce: bytes, public_key: bytes, now: datetime
    ) -> Claims:
        """The verified claims, or EvidenceRefused naming the failed check."""
        verifier = verifier_for(
            entry.platform,
            insecure_simulated_tee=self.insecure_simulated_tee,
            sim_key=self.sim_key,
        )
        policy = entry.policy()
        claims = verifier.verify(
            evidence,
            expect=expectation(entry.platform, nonce, public_key),
            now=now,
            policy=policy,
        )
        if claims.platform is not entry.platform:
            raise EvidenceRefused("platform", "the evidence is not of the registered platform")
        if claims.debug and not entry.allow_debug:
            raise EvidenceRefused("debug", "the TEE runs in debug mode")
        if claims.tcb_status not in entry.accepted_tcb:
            raise EvidenceRefused("tcb", "the TCB status is not accepted")
        check_measurements(claims.measurements, policy)
        return claims


def load_sim_key(path: Path) -> Ed25519PublicKey:
    """The development public key of simulated evidence (PEM, public or private).

    ConfigError when the file is missing or not an Ed25519 key.
    """
    return load_public_key(path, setting="kms: sim_key")
