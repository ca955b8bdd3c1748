"""The stored form of a session's identity part, shared by the SQLite and Redis stores.

The clocks (``created``, ``last_seen``, ``absolute_expiry``, ``idle_timeout``),
``sub`` and ``family_id`` are stored as separate fields because the stores
query or update them; the rest (tenant, roles, amr, acr, auth_time, cnf_jkt,
MFA flags) is one canonical JSON object written once at creation. A record
that does not decode is corruption: the caller fails closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.model import Session

_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoredTimes:
    """The clock fields of a stored session."""

    created: float
    last_seen: float
    absolute_expiry: float
    idle_timeout: float


def encode_identity(session: Session) -> str:
    """Canonical JSON of the identity part."""
    body = {
        "v": _VERSION,
        "tenant": session.tenant,
        "roles": list(session.roles),
        "amr": list(session.amr),
        "acr": session.acr,
        "auth_time": session.auth_time,
        "cnf_jkt": session.cnf_jkt,
        "mfa_enrolled": session.mfa_enrolled,
        "mfa_time": session.mfa_time,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode_session(
    *, sid: str, sub: str, family_id: str, identity: str | bytes, times: StoredTimes
) -> Session:
    """A :class:`Session` from its stored parts; SessionStoreUnavailable if corrupt."""
    try:
        body = json.loads(identity)
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown identity version")
        mfa_time = body["mfa_time"]
        return Session(
            sid=sid,
            sub=sub,
            tenant=_opt_str(body["tenant"]),
            roles=_strings(body["roles"]),
            amr=_strings(body["amr"]),
            acr=_opt_str(body["acr"]),
            auth_time=int(body["auth_time"]),
            created=times.created,
            last_seen=times.last_seen,
            absolute_expiry=times.absolute_expiry,
            idle_timeout=times.idle_timeout,
            family_id=family_id,
            cnf_jkt=_opt_str(body["cnf_jkt"]),
            mfa_enrolled=bool(body["mfa_enrolled"]),
            mfa_time=None if mfa_time is None else float(mfa_time),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise SessionStoreUnavailable("sessions: corrupt session record") from e


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


def _opt_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("expected a string or null")
    return value
