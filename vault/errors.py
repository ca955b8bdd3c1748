"""Errors of the vault package: one base, a handful of subclasses.

Detokenization failures of single values are *values* (``TokenRefused``),
never exceptions; an exception from the vault means the whole message fails
closed. Messages never carry a token, a value or key material.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class VaultError(GatewayError):
    """Base of vault errors: the vault cannot serve this message (503)."""

    status = 503
    code = "vault_unavailable"


class VaultUnavailable(VaultError):
    """The store did not answer, timed out or refused: fail closed."""


class VaultConfigError(VaultError):
    """A vault URI or option that cannot be used (raised at start-up)."""

    status = 500
    code = "config_error"
    public = True


class FormatMismatch(VaultError):
    """A value does not fit its class's token format and the class says ``on_mismatch: error``."""

    status = 400
    code = "bad_field"
    public = True
