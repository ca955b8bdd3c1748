"""Evidence that binds the worker's public key and a verifier's nonce.

Each TEE platform produces evidence its own way (NSM device, SEV-SNP guest
firmware, TDX/SGX quoting); this module holds the boundary and the simulated
attester. Only the simulated one exists so far: a hardware attester is added
here behind the same :class:`Attester` protocol.

WARNING: :class:`SimAttester` proves nothing about the machine (see
:mod:`tee.sim`); the worker only uses it with ``--insecure-simulated-tee``.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tee.attestation import Platform
from tee.binding import report_data
from tee.sim import SimReport, sign_evidence


class Attester(Protocol):
    """Produces this TEE's evidence for (nonce, public key)."""

    platform: ClassVar[Platform]

    @property
    def measurement(self) -> bytes:
        """What the evidence reports as the measured code."""
        ...

    def evidence(self, nonce: bytes, public_key: bytes, *, now: datetime) -> bytes:
        """Evidence binding ``nonce`` and ``public_key`` (tee.binding), issued at ``now``."""
        ...


class SimAttester:
    """WARNING: signs simulated evidence with the development key from the data dir."""

    platform: ClassVar[Platform] = Platform.SIM

    def __init__(self, key: Ed25519PrivateKey, measurement: bytes) -> None:
        self._key = key
        self._measurement = measurement

    @property
    def measurement(self) -> bytes:
        """The job bundle's SHA-384 (tee.bundle)."""
        return self._measurement

    def evidence(self, nonce: bytes, public_key: bytes, *, now: datetime) -> bytes:
        """Simulated evidence carrying nonce, key and their report data."""
        report = SimReport(
            measurement=self._measurement,
            report_data=report_data(nonce, public_key),
            public_key=public_key,
            nonce=nonce,
        )
        return sign_evidence(self._key, report, now=now)
