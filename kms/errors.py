"""Errors of the KMS broker and registry API: a status, a stable code, a message safe to answer.

One base, :class:`BrokerError` (public: its messages are fixed strings
written here that name the rule, never a key, a session, a nonce or
evidence), with the few shapes callers tell apart. Codes are the ones
docs/tee-protocol.md lists.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class BrokerError(GatewayError):
    """A refused broker or registry call (default 400 ``bad_request``)."""

    status = 400
    code = "bad_request"
    public = True


class Refused(BrokerError):
    """The call is understood but not allowed (403 unless given)."""

    status = 403
    code = "forbidden"


class Unavailable(BrokerError):
    """The KMS cannot serve right now (store, keyring sealed, audit log): 503."""

    status = 503
    code = "unavailable"


def refused(code: str, message: str, *, status: int = 403) -> Refused:
    """A refusal with ``code`` and HTTP ``status``."""
    return Refused(message, status=status, code=code)
