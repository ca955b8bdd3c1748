"""Mapping verified ID-token claims to the identity a session is created for.

``sub``, ``amr``, ``acr`` and ``auth_time`` are the standard claims; roles and
tenant come from configured key paths (``roles`` or ``[realm_access, roles]``).
Roles may be a list of strings or one space-separated string; absent means
none. A claim present with the wrong type fails the login (closed) instead of
being read as "no roles", so a provider change cannot silently grant or drop
access in unexpected ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from proxy.auth import claims as c
from proxy.auth.errors import AuthError
from proxy.oidc.config import OidcClaimMapping
from proxy.oidc.errors import IdTokenError

MAX_ROLES: Final = 256
MAX_ROLE_LENGTH: Final = 256
_ABSENT: Final = object()


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """Who signed in at the provider, and how."""

    sub: str
    roles: tuple[str, ...] = ()
    tenant: str | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None
    auth_time: int | None = None


def map_claims(claims: Mapping[str, object], mapping: OidcClaimMapping) -> OidcIdentity:
    """The identity in verified ``claims``; IdTokenError on a claim of the wrong shape."""
    try:
        auth_time = c.optional_time(claims, "auth_time")
        return OidcIdentity(
            sub=c.string(claims, "sub", max_length=255),
            roles=_roles(_lookup(claims, mapping.roles)),
            tenant=_tenant(claims, mapping.tenant),
            amr=c.string_list(claims, "amr", required=False, max_items=32),
            acr=c.optional_string(claims, "acr"),
            auth_time=int(auth_time) if auth_time is not None else None,
        )
    except AuthError as e:
        raise IdTokenError(f"mapping: {e.reason}") from e


def _lookup(claims: Mapping[str, object], path: tuple[str, ...]) -> object:
    value: object = claims
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def _roles(value: object) -> tuple[str, ...]:
    if value is _ABSENT or value is None:
        return ()
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_ROLES:
        raise IdTokenError("mapping: roles claim is not a list of strings")
    if not all(isinstance(r, str) and 0 < len(r) <= MAX_ROLE_LENGTH for r in items):
        raise IdTokenError("mapping: roles claim is not a list of strings")
    return tuple(dict.fromkeys(items))


def _tenant(claims: Mapping[str, object], path: tuple[str, ...] | None) -> str | None:
    if path is None:
        return None
    value = _lookup(claims, path)
    if value is _ABSENT or value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise IdTokenError("mapping: tenant claim is not a string")
    return value
