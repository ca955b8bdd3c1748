"""The body of ``POST /v1/attestation/verify`` and what it asks the verifier to check.

:class:`VerifyBody` is the strict JSON shape (unknown fields refused, booleans
only as JSON booleans); :func:`verify_request` turns it into the evidence
bytes, the :class:`~tee.attestation.Expectation`, the
:class:`~tee.attestation.Policy` and the time to verify at, or raises
:class:`~proxy.adminapi.errors.BadRequest` with a fixed message naming the
field (never its value). Encodings, one spelling each:

- ``evidence``: standard base64 with padding (RFC 4648 section 4), no spaces;
- ``expect_*`` and measurement values: hex (either case; compared lowercase);
- ``at``: an RFC 3339 date-time with its offset (``2025-07-01T00:00:00Z``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import Field, StrictBool

from policy.types import StrictModel
from proxy.adminapi.errors import BadRequest
from tee.attestation import Expectation, Platform, Policy

MAX_EVIDENCE: Final = 192 * 1024  # decoded bytes: a DCAP quote with its collateral is ~25 KiB
MAX_BODY: Final = 4 * (MAX_EVIDENCE // 3) + 16 * 1024  # the base64 of that, plus the rest
MAX_BINDING_HEX: Final = 1024  # 512 bytes: Nitro's nonce and user_data limit
HEX: Final = r"^(?:[0-9a-fA-F]{2})*$"
RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_B64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")

_Hex = Annotated[str, Field(max_length=MAX_BINDING_HEX, pattern=HEX)]
_Measurement = Annotated[str, Field(min_length=2, max_length=128, pattern=HEX)]
_Accepted = Annotated[list[_Measurement], Field(min_length=1, max_length=16)]
_Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
_Tcb = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]


class VerifyBody(StrictModel):
    """Evidence to verify, as which platform, and what it must show."""

    platform: Literal["nitro", "sev-snp", "tdx", "sgx", "sim"] = Field(
        description="what the TEE is: chooses the verifier (the evidence is not trusted to say)"
    )
    evidence: str = Field(
        min_length=4,
        max_length=4 * (MAX_EVIDENCE // 3),
        description="the evidence bytes, standard base64 with padding",
    )
    expect_nonce: _Hex | None = Field(None, description="hex nonce the evidence must carry")
    expect_report_data: _Hex | None = Field(
        None, description="hex report data (Nitro: user_data) the evidence must carry"
    )
    expect_public_key: _Hex | None = Field(
        None, description="hex public key the evidence must bind"
    )
    at: str | None = Field(
        None, max_length=40, description="verify as of this RFC 3339 time (default: now)"
    )
    allow_debug: StrictBool = Field(False, description="accept evidence from a debug-mode TEE")
    accepted_tcb: list[_Tcb] = Field(
        default_factory=list, max_length=16, description="TCB statuses accepted besides UpToDate"
    )
    measurements: dict[_Name, _Accepted] | None = Field(
        None, max_length=64, description="name -> accepted hex values; each name must match one"
    )


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """A checked body: what to verify, as which platform, against what, when."""

    platform: Platform
    evidence: bytes
    expect: Expectation
    policy: Policy
    at: datetime


def verify_request(body: VerifyBody, *, now: datetime) -> VerifyRequest:
    """The request ``body`` asks for; BadRequest naming the field that does not decode."""
    measurements = body.measurements or {}
    return VerifyRequest(
        platform=Platform(body.platform),
        evidence=_evidence(body.evidence),
        expect=Expectation(
            nonce=_hex(body.expect_nonce),
            report_data=_hex(body.expect_report_data),
            public_key=_hex(body.expect_public_key),
        ),
        policy=Policy(
            allow_debug=body.allow_debug,
            accepted_tcb=frozenset({"UpToDate", *body.accepted_tcb}),
            measurements={n: frozenset(v.lower() for v in vs) for n, vs in measurements.items()},
        ),
        at=now if body.at is None else _time(body.at),
    )


def _evidence(text: str) -> bytes:
    if not _B64.fullmatch(text):
        raise BadRequest("admin: body field 'evidence' must be standard base64 with padding")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:  # unreachable after the pattern: kept closed
        raise BadRequest("admin: body field 'evidence' must be standard base64 with padding") from e


def _hex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)  # the model's pattern allows hex only


def _time(text: str) -> datetime:
    if not RFC3339.fullmatch(text):
        raise BadRequest("admin: body field 'at' must be an RFC 3339 time with an offset")
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as e:  # e.g. month 13
        raise BadRequest("admin: body field 'at' must be an RFC 3339 time with an offset") from e
