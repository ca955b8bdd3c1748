"""Errors of the KMS's root operations for gateways (the ``remote:`` root backend).

Each carries the HTTP status and the ``error`` code the root API answers
with (docs/tee-protocol.md, "Root operations for gateways"). Messages name a
client id, a KWK version or a store description, never key material, a
reference or a credential, so they are safe to return to the caller.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class RootServiceError(GatewayError):
    """Base of the root service's deliberate errors: the store or keyring cannot serve (503)."""

    status = 503
    code = "unavailable"
    public = True


class RootStoreUnavailable(RootServiceError):
    """The KWK table (SQLite or PostgreSQL) failed; nothing was changed or released."""


class BadReference(RootServiceError):
    """A reference of the wrong shape (not one this KMS ever made)."""

    status = 400
    code = "bad_reference"


class KwkExists(RootServiceError):
    """Create of a version that is still live for this client."""

    status = 409
    code = "kwk_exists"


class KwkUnknown(RootServiceError):
    """No KWK of this client matches (version, reference); also any reference that fails to open."""

    status = 404
    code = "kwk_unknown"


class KwkDestroyed(RootServiceError):
    """The KWK was destroyed: it never opens again."""

    status = 410
    code = "kwk_destroyed"
