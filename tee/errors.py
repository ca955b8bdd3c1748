"""Errors of the tee package: one base and the refusal of a piece of evidence.

A refusal names the check that failed (``chain``, ``signature``,
``window``, ``nonce``, ``report_data``, ``debug``, ``tcb``, ``measurement``,
``format``, ``root``, ...) so an operator can act on it; it never carries
key material or the evidence itself.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class TeeError(GatewayError):
    """Base of TEE errors: the TEE pool cannot serve (503)."""

    status = 503
    code = "tee_unavailable"


class EvidenceRefused(TeeError):
    """The evidence did not verify; ``check`` names the check that failed."""

    status = 403
    code = "attestation_refused"
    public = True

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"attestation: {check}: {detail}")
        self.check = check
        self.detail = detail
