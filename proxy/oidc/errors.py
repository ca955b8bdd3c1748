"""Errors of the OIDC relying party.

One base, :class:`OidcError` (401: the login did not succeed), and three
subclasses: :class:`OidcUnavailable` (503: the provider could not be reached or
answered nonsense, so the login fails closed), :class:`OidcProviderError` (the
provider said no: ``error=`` in the callback or at the token endpoint) and
:class:`IdTokenError` (one opaque error for every ID-token check).

Messages are short, lowercase, prefixed ``oidc:`` and never contain a code, a
token, a secret, a state or text the provider or the browser chose;
``reason`` is for logs only. :class:`OidcProviderError` carries the provider's
``error`` only when it is one of the registered OAuth/OIDC codes, so it is safe
to show (``public``) and never echoes attacker-controlled text.
"""

from __future__ import annotations

from typing import Final

from tokengate.errors import GatewayError

# RFC 6749 sections 4.1.2.1 and 5.2, OIDC Core 3.1.2.6, RFC 9126, RFC 9101.
KNOWN_ERROR_CODES: Final = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
        "invalid_client",
        "invalid_grant",
        "unsupported_grant_type",
    }
)
_UNAVAILABLE_CODES: Final = frozenset({"server_error", "temporarily_unavailable"})


class OidcError(GatewayError):
    """An OIDC login failed (401); ``reason`` is for logs, never for clients."""

    status = 401
    code = "oidc_login_failed"

    def __init__(
        self, message: str, *, reason: str = "", status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.reason = reason or message


class OidcUnavailable(OidcError):
    """The provider (discovery, JWKS or token endpoint) is unreachable or broken: fail closed."""

    status = 503
    code = "oidc_unavailable"


class OidcProviderError(OidcError):
    """The provider refused; ``error`` is a registered error code or ``unknown``."""

    code = "oidc_provider_error"
    public = True

    def __init__(self, where: str, error: object) -> None:
        known = error if isinstance(error, str) and error in KNOWN_ERROR_CODES else "unknown"
        super().__init__(
            f"oidc: provider returned {known} at {where}",
            status=503 if known in _UNAVAILABLE_CODES else None,
        )
        self.error = known


class IdTokenError(OidcError):
    """The ID token failed a check; one opaque error for every cause."""

    code = "invalid_token"

    def __init__(self, reason: str) -> None:
        super().__init__("oidc: id token not acceptable", reason=reason)
