"""The verifier boundary: evidence + expectations + time -> claims, or a refusal naming the check.

Rules every verifier keeps:
- The verifier is chosen from the platform the registry records for a TEE,
  never from the evidence itself (:func:`tee.verifiers.verifier_for`).
- Time is injected (``now``); certificates, collateral and documents are
  checked against it, never against the wall clock inside the verifier.
- Only TCB status ``UpToDate`` is accepted unless the policy lists others;
  debug-mode evidence is refused unless the policy allows debug.
- What the caller expects bound into the evidence (nonce, report data, public
  key) is compared in constant time; a missing expected binding is refused.
- Any failure raises :class:`~tee.errors.EvidenceRefused` naming the check;
  nothing is returned half-verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Protocol


class Platform(StrEnum):
    """TEE platforms with a verifier."""

    NITRO = "nitro"
    SEV_SNP = "sev-snp"
    TDX = "tdx"
    SGX = "sgx"
    SIM = "sim"


@dataclass(frozen=True, slots=True)
class Expectation:
    """What must be bound into the evidence (None: not checked for that field).

    - ``nonce``: Nitro's ``nonce`` field; for report-data platforms the caller
      folds it into ``report_data`` (see :mod:`tee.binding`).
    - ``report_data``: SEV-SNP REPORT_DATA (64 B), TDX/SGX REPORTDATA (64 B);
      Nitro ``user_data``.
    - ``public_key``: Nitro's ``public_key`` field (the worker's attested key).
    """

    nonce: bytes | None = None
    report_data: bytes | None = None
    public_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """What a verifier accepts beyond a valid signature chain."""

    allow_debug: bool = False
    accepted_tcb: frozenset[str] = frozenset({"UpToDate"})
    # Measurement name -> accepted hex values (lowercase); a name listed here
    # must be present in the claims and match one value. Empty: not checked here
    # (the registry decides which measurements are legitimate).
    measurements: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Platform-specific knobs (e.g. SEV-SNP "max_vmpl", "min_tcb"), validated
    # by each verifier; unknown keys are refused.
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Claims:
    """What verified evidence says about the TEE."""

    platform: Platform
    measurements: Mapping[str, str]  # name -> lowercase hex (pcr0, measurement, mrtd, ...)
    report_data: bytes  # the bound data as carried (Nitro: user_data or b"")
    public_key: bytes | None  # the key the evidence binds, where the platform carries one
    nonce: bytes | None  # Nitro's nonce field, where present
    tcb_status: str  # "UpToDate", "OutOfDate", ... ("UpToDate" where the platform has none)
    debug: bool
    issued_at: datetime | None = None  # the evidence's own timestamp, where it has one
    details: Mapping[str, str] = field(default_factory=dict)  # chain subjects, advisories, ...


class Verifier(Protocol):
    """One platform's evidence verifier."""

    platform: ClassVar[Platform]

    def verify(
        self, evidence: bytes, *, expect: Expectation, now: datetime, policy: Policy
    ) -> Claims:
        """The evidence's claims, or EvidenceRefused naming the failed check."""
        ...


def check_binding(check: str, expected: bytes | None, carried: bytes | None) -> None:
    """Refuse (as ``check``) an expected binding the evidence lacks (``carried`` None) or differs.

    Compared in constant time; nothing is checked when nothing is expected.
    """
    import hmac

    from tee.errors import EvidenceRefused

    if expected is None:
        return
    if carried is None:
        raise EvidenceRefused(check, "expected, but this evidence does not carry it")
    if not hmac.compare_digest(expected, carried):
        raise EvidenceRefused(check, "does not match the expected value")


def check_measurements(claims: Mapping[str, str], policy: Policy) -> None:
    """Every measurement the policy names is present and one of its accepted values."""
    from tee.errors import EvidenceRefused

    for name, accepted in policy.measurements.items():
        value = claims.get(name)
        if value is None or value.lower() not in accepted:
            raise EvidenceRefused("measurement", f"{name} is not an accepted value")
