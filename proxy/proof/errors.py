"""Errors of the request-proof core.

One error, :class:`ProofError`: a signature, digest or structured header that
does not verify or parse. It is opaque on purpose; ``reason`` is for logs.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class ProofError(GatewayError):
    """A request proof failed to parse or verify."""

    status = 401
    code = "invalid_signature"

    def __init__(self, reason: str) -> None:
        super().__init__("proof: invalid request proof")
        self.reason = reason
