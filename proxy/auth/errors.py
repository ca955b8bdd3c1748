"""Errors of the session and proof core.

One base, :class:`AuthError` (401), and two subclasses: :class:`Forbidden`
(403: authenticated but not allowed) and :class:`StepUpRequired` (401 with the
RFC 9470 challenge fields, so the caller can answer ``WWW-Authenticate: Bearer
error="insufficient_user_authentication", acr_values=..., max_age=...``).

Messages are short, lowercase, prefixed with their context, and never contain a
token, a secret, a code or a key. Signature and token checks raise one opaque
error; the precise ``reason`` is for logs only.
"""

from __future__ import annotations

import re

from tokengate.errors import GatewayError

_ACR = re.compile(r"[!#-\[\]-~]+")


class AuthError(GatewayError):
    """The request is not authenticated (401); ``reason`` is for logs, never for clients."""

    status = 401
    code = "unauthorized"

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.reason = reason or message


class Forbidden(AuthError):
    """Authenticated, but not allowed to do this (403)."""

    status = 403
    code = "forbidden"


class StepUpRequired(AuthError):
    """Stronger or fresher authentication is needed (RFC 9470, 401).

    ``acr_values`` (space-separated, as in the challenge) and ``max_age``
    (seconds) are the challenge parameters; either may be absent.
    """

    status = 401
    code = "insufficient_user_authentication"

    def __init__(
        self,
        message: str,
        *,
        acr_values: tuple[str, ...] = (),
        max_age: int | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message, reason=reason)
        if not all(_ACR.fullmatch(value) for value in acr_values):
            raise ValueError(
                "auth: acr values must be printable ascii without space, quote, backslash"
            )
        self.acr_values = acr_values
        self.max_age = max_age

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of RFC 9470 section 3."""
        parts = ['Bearer error="insufficient_user_authentication"']
        if self.acr_values:
            parts.append(f'acr_values="{" ".join(self.acr_values)}"')
        if self.max_age is not None:
            parts.append(f'max_age="{self.max_age}"')
        return ", ".join(parts)
