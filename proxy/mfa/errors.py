"""Errors of the MFA service and its stores.

Verification outcomes (failed, locked, replayed) are values, not errors; these
are for the cases the caller cannot turn into an outcome: a store that is down
(503: fail closed) or a request that does not fit the subject's enrolment
state (409). Messages never contain a secret, a code or a subject's factor.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class MfaError(GatewayError):
    """Base of every deliberate MFA error."""

    status = 500
    code = "mfa_error"


class MfaStoreUnavailable(MfaError):
    """The MFA record store did not answer or answered wrongly (fail closed)."""

    status = 503
    code = "service_unavailable"


class MfaStateError(MfaError):
    """The request does not fit the enrolment state (nothing pending, nothing enrolled)."""

    status = 409
    code = "mfa_state"
    public = True
