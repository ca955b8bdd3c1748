"""Errors of the admin API: why a request was refused, in words safe to show the caller.

One base, :class:`AdminApiError`, whose messages are fixed strings written
here (``public``): they name the rule that was broken, never echo a key, a
header value or a body. :class:`AuthFailed` (401) and :class:`RoleTooWeak`
(403) carry a ``reason`` for the audit log; :class:`BadRequest` covers every
malformed request (400, 413, 415).
"""

from __future__ import annotations

from typing import Literal

from tokengate.errors import GatewayError

AuthFailure = Literal["missing", "malformed", "unknown_key"]


class AdminApiError(GatewayError):
    """A refused admin API request; the message is fixed and safe to answer."""

    public = True


class AuthFailed(AdminApiError):
    """No usable API key (401): missing, malformed or unknown; ``reason`` says which."""

    status = 401
    code = "unauthorized"

    def __init__(self, reason: AuthFailure) -> None:
        super().__init__("admin: a valid API key is required (Authorization: Bearer tga_...)")
        self.reason: AuthFailure = reason


class RoleTooWeak(AdminApiError):
    """The key is valid but its role may not do this (403)."""

    status = 403
    code = "forbidden"

    def __init__(self, required: str) -> None:
        super().__init__(f"admin: this operation needs the {required} role")
        self.required = required


class BadRequest(AdminApiError):
    """A malformed path parameter or body (400; 413 too large; 415 not JSON)."""

    status = 400
    code = "bad_request"
