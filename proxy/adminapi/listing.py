"""How a session is shown to an administrator: facts and clocks, never a secret.

A listed session is named by ``sid_hash``, the hex SHA-256 of its id (the
same value the ``admin.*`` audit entries carry), so a listing can be matched
against the audit log and revoked through ``users/{sub}/sessions/{sid_hash}``
without handing out session ids. Refresh tokens, family ids and the DPoP key
thumbprint are never shown; ``dpop_bound`` says whether there is one. Times
are RFC 3339 in UTC.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Final

from proxy.sessions.model import Session

_SID_HASH: Final = re.compile(r"[0-9a-f]{64}")
_SID: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # the shape of proxy.sessions.model.new_sid()
_SUB_BAD: Final = re.compile(r"[\x00-\x1f\x7f]")

JsonValue = str | int | bool | None | list[str]


def sid_hash(sid: str) -> str:
    """The public name of a session: hex SHA-256 of its id."""
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def is_sid_hash(value: str) -> bool:
    """Whether ``value`` is 64 lowercase hex digits (the whole string)."""
    return bool(_SID_HASH.fullmatch(value))


def is_session_id(value: str) -> bool:
    """Whether ``value`` has the shape of a session id (the whole string, no trailing newline)."""
    return bool(_SID.fullmatch(value))


def is_sub(value: str) -> bool:
    """Whether ``value`` can be a user id: 1..1024 characters, no control characters."""
    return 0 < len(value) <= 1024 and not _SUB_BAD.search(value)


def rfc3339(ts: float) -> str:
    """POSIX seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_view(session: Session) -> dict[str, JsonValue]:
    """One session as the admin API and ``tokengate sessions list`` show it."""
    return {
        "sid_hash": sid_hash(session.sid),
        "tenant": session.tenant,
        "roles": list(session.roles),
        "amr": list(session.amr),
        "acr": session.acr,
        "mfa": session.mfa,
        "dpop_bound": session.cnf_jkt is not None,
        "auth_time": rfc3339(session.auth_time),
        "created": rfc3339(session.created),
        "last_seen": rfc3339(session.last_seen),
        "expires_at": rfc3339(session.expires_at),
        "absolute_expiry": rfc3339(session.absolute_expiry),
    }
