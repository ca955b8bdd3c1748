"""Errors of the session store.

Two kinds, kept apart on purpose so a middleware can never confuse them:

- :class:`SessionStoreUnavailable` (503): the store is down, timed out, is
  corrupt, or a revoke was not acknowledged by a replica. The request fails
  closed; it is never treated as "no session" (that would redirect to login and
  hide an outage) and never as "allowed".
- :class:`RefreshRejected` (401, an :class:`proxy.auth.errors.AuthError`): the
  refresh token is unknown, expired, revoked or reused. Every cause answers the
  client the same way; ``reason`` is for logs, and
  :class:`RefreshReuseDetected` carries the session ids the audit log needs.

Messages are short, lowercase, start with ``sessions:``, and never contain a
token, a token hash or a secret.
"""

from __future__ import annotations

from proxy.auth.errors import AuthError
from tokengate.errors import GatewayError


class SessionStoreUnavailable(GatewayError):
    """The session store cannot answer (503): fail closed."""

    status = 503
    code = "session_store_unavailable"


class RefreshRejected(AuthError):
    """The refresh token does not give a session (401); one answer for every cause."""

    status = 401
    code = "refresh_rejected"

    def __init__(self, reason: str) -> None:
        super().__init__("sessions: refresh rejected", reason=reason)


class RefreshReuseDetected(RefreshRejected):
    """An already-rotated refresh token came back: its whole family is revoked.

    ``revoked`` is False when the store could not confirm that revocation
    (Redis down, or no replica acknowledged it; the cause is chained): the
    request is refused all the same, and the audit entry should say so.
    """

    def __init__(self, *, sid: str, sub: str, family_id: str, revoked: bool = True) -> None:
        super().__init__("reuse")
        self.sid = sid
        self.sub = sub
        self.family_id = family_id
        self.revoked = revoked
