"""A verification verdict as an operator reads it: text for the terminal, a dict for JSON.

Built from verified claims or from the refusal, never from unverified
evidence contents (a refused document's claims are not shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tee.attestation import Claims, Expectation, Platform, Policy
from tee.errors import EvidenceRefused
from tee.verifiers import verifier_for


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of verifying one piece of evidence."""

    platform: Platform
    at: datetime
    claims: Claims | None = None
    refused: EvidenceRefused | None = None
    source: str = ""  # file name or deployment id
    notes: tuple[str, ...] = field(default=())

    @property
    def verified(self) -> bool:
        """True only with claims and no refusal."""
        return self.claims is not None and self.refused is None

    def as_dict(self) -> dict[str, object]:
        """The verdict for ``--json`` and the API."""
        out: dict[str, object] = {
            "source": self.source,
            "platform": self.platform.value,
            "verified_at": self.at.isoformat(),
            "verdict": "verified" if self.verified else "refused",
        }
        if self.refused is not None:
            out["failed_check"] = self.refused.check
            out["reason"] = self.refused.detail
        if self.claims is not None:
            c = self.claims
            out["measurements"] = dict(c.measurements)
            out["tcb_status"] = c.tcb_status
            out["debug"] = c.debug
            out["report_data"] = c.report_data.hex()
            out["public_key"] = c.public_key.hex() if c.public_key else None
            out["nonce"] = c.nonce.hex() if c.nonce else None
            out["issued_at"] = c.issued_at.isoformat() if c.issued_at else None
            out["details"] = dict(c.details)
            out["signature_and_chain"] = "valid"
        return out

    def text(self) -> str:
        """A readable multi-line report."""
        word = "VERIFIED" if self.verified else "REFUSED"
        lines = [f"{self.source or 'evidence'}: {word}"]
        lines.append(f"  platform      {self.platform.value}")
        lines.append(f"  checked at    {self.at.isoformat()}")
        if self.refused is not None:
            lines.append(f"  failed check  {self.refused.check}: {self.refused.detail}")
            return "\n".join(lines)
        claims = self.claims
        if claims is None:
            return "\n".join(lines)
        if claims.platform is Platform.SIM:
            lines.append("  signature     valid (the development key: no hardware root)")
        else:
            lines.append("  signature     valid, chain to the pinned root valid")
        lines.append(f"  tcb status    {claims.tcb_status}")
        lines.append(f"  debug         {'yes' if claims.debug else 'no'}")
        if claims.issued_at is not None:
            lines.append(f"  issued at     {claims.issued_at.isoformat()}")
        for name, value in sorted(claims.measurements.items()):
            lines.append(f"  {name:<13} {value}")
        for name, value in sorted(claims.details.items()):
            lines.append(f"  {name:<13} {value}")
        return "\n".join(lines)


def check_evidence(
    platform: Platform,
    evidence: bytes,
    *,
    expect: Expectation,
    policy: Policy,
    at: datetime,
    source: str = "",
    sim_key: Ed25519PublicKey | None = None,
) -> Verdict:
    """Verify ``evidence`` as ``platform`` evidence (as recorded, not as claimed) into a Verdict.

    A refusal is a verdict, not an exception: ``sim`` evidence without
    ``sim_key`` (the caller's config does not allow the simulated TEE) is
    refused as check ``platform``. Anything but a refusal (a bug) propagates,
    so nothing is ever reported verified by accident.
    """
    try:
        verifier = verifier_for(
            platform, insecure_simulated_tee=sim_key is not None, sim_key=sim_key
        )
        claims = verifier.verify(evidence, expect=expect, now=at, policy=policy)
    except EvidenceRefused as e:
        return Verdict(platform, at, refused=e, source=source)
    return Verdict(platform, at, claims=claims, source=source)
