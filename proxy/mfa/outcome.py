"""The values an MFA attempt returns: every outcome is audited by the caller.

``MfaResult.outcome`` is one of ``enrolled``, ``passed``, ``failed``,
``locked``, ``replayed``; ``reason`` is a short fixed word for logs and audit
records (never a code or a secret). A pass carries :class:`MfaPassed`, which
the session layer turns into a new session id with ``amr`` extended, ``acr``
set and ``auth_time`` moved to ``auth_time``.

AMR values are RFC 8176's: ``otp`` (TOTP, and recovery codes, which are
one-time passwords too), ``hwk`` (a WebAuthn key) and ``mfa``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

type Method = Literal["otp", "hwk", "recovery"]

_AMR: dict[str, tuple[str, ...]] = {
    "otp": ("otp", "mfa"),
    "hwk": ("hwk", "mfa"),
    "recovery": ("otp", "mfa"),
}


class MfaOutcome(StrEnum):
    """What happened, as the audit log names it."""

    ENROLLED = "enrolled"
    PASSED = "passed"
    FAILED = "failed"
    LOCKED = "locked"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class MfaPassed:
    """A passed second factor: what the session gains (``auth_time`` in whole POSIX seconds)."""

    method: Method
    amr: list[str]
    acr: str
    auth_time: int


@dataclass(frozen=True)
class MfaResult:
    """The outcome of one enrolment or verification attempt."""

    outcome: MfaOutcome
    subject: str = field(repr=False)
    method: Method
    reason: str
    passed: MfaPassed | None = None
    failures: int = 0
    locked_until: float | None = None
    recovery_codes_left: int | None = None
    detail: str = ""  # the library's reason for a refused WebAuthn response, for logs only


def passed(
    subject: str, method: Method, *, acr: str, now: float, recovery_codes_left: int | None = None
) -> MfaResult:
    """A ``passed`` result with its :class:`MfaPassed`."""
    grant = MfaPassed(method=method, amr=list(_AMR[method]), acr=acr, auth_time=int(now))
    return MfaResult(
        MfaOutcome.PASSED,
        subject,
        method,
        "ok",
        passed=grant,
        recovery_codes_left=recovery_codes_left,
    )
