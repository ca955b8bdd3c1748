"""Who tokengate says is calling: the claims of the ``Tokengate-Identity`` token.

The token's signature is checked by the caller (:mod:`demo_backend.jws` with a
key from the gateway's JWKS); this module checks what it claims.

Rules:
- ``aud`` is this app's identity audience (a string, or an array holding it):
  a token minted for another upstream is refused.
- ``iat`` and ``exp`` are integers; the token lives at most 60 s; it is not
  expired and not issued in the future, allowing 5 s of clock skew either way;
  ``nbf``, when present, has passed.
- ``sub`` is a string and ``roles`` an array of strings (both bounded); they
  become the request's user, in place of the app's own cookie. An empty
  ``sub`` is tokengate's anonymous caller (public routes): no user, and then
  ``roles`` must be empty too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from demo_backend.jws import JwsError
from demo_backend.store import Account

IDENTITY_HEADER: Final = "Tokengate-Identity"
TYP: Final = "tokengate-identity+jwt"
MAX_LIFETIME: Final = 60
CLOCK_SKEW: Final = 5.0
MAX_SUB_CHARS: Final = 256
MAX_ROLES: Final = 64
MAX_ROLE_CHARS: Final = 64


def _integer(payload: Mapping[str, object], name: str) -> int:
    value = payload.get(name)
    if type(value) is not int:
        raise JwsError(f"identity: {name} is not an integer")
    return value


def _audience_matches(aud: object, audience: str) -> bool:
    if isinstance(aud, str):
        return aud == audience
    return isinstance(aud, list) and audience in aud and all(isinstance(a, str) for a in aud)


def identity_account(payload: Mapping[str, object], *, audience: str, now: float) -> Account | None:
    """The user a signature-checked identity payload names (None: anonymous); JwsError if bad."""
    if not _audience_matches(payload.get("aud"), audience):
        raise JwsError("identity: wrong audience")
    iat, exp = _integer(payload, "iat"), _integer(payload, "exp")
    if not 0 < exp - iat <= MAX_LIFETIME:
        raise JwsError("identity: lifetime out of range")
    if exp <= now - CLOCK_SKEW or iat > now + CLOCK_SKEW:
        raise JwsError("identity: expired or not yet valid")
    if "nbf" in payload and _integer(payload, "nbf") > now + CLOCK_SKEW:
        raise JwsError("identity: not yet valid")
    sub, roles = payload.get("sub"), payload.get("roles")
    if not isinstance(sub, str) or len(sub) > MAX_SUB_CHARS:
        raise JwsError("identity: sub missing or too long")
    if not isinstance(roles, list) or len(roles) > MAX_ROLES:
        raise JwsError("identity: roles missing or too many")
    if not all(isinstance(r, str) and 0 < len(r) <= MAX_ROLE_CHARS for r in roles):
        raise JwsError("identity: a role is not a short string")
    if not sub:
        if roles:
            raise JwsError("identity: anonymous caller with roles")
        return None
    return Account(username=sub, roles=tuple(roles))
