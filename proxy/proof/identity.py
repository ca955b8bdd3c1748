"""The ``Tokengate-Identity`` JWT: who the gateway says is calling, for one upstream.

Rules:

- ``typ: tokengate-identity+jwt``, signed with the current upstream-signing
  key (``kid`` its RFC 7638 thumbprint, published in the gateway's JWKS).
- Claims ``iss aud sub sid roles tenant amr acr auth_time iat exp jti``; ``aud``
  is the upstream, so a token minted for one backend is useless at another;
  lifetime at most 60 s.
- A token is reused for the same session, upstream, key and claims until
  ``refresh_margin`` seconds before its ``exp``, so the signature cost is paid
  about once a minute per session, not per request. The cache is bounded (LRU).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from proxy.auth.jose import SigningKey, b64url_encode, sign

TYP: Final = "tokengate-identity+jwt"
MAX_LIFETIME: Final = 60


@dataclass(frozen=True)
class Identity:
    """The session facts an identity token carries."""

    sub: str
    sid: str
    roles: tuple[str, ...]
    tenant: str | None
    amr: tuple[str, ...]
    acr: str
    auth_time: int


@dataclass(frozen=True)
class _Cached:
    token: str
    exp: int


class IdentityMinter:
    """Mints (and reuses) identity tokens for forwarded requests."""

    def __init__(
        self,
        *,
        signer: Callable[[], SigningKey],
        issuer: str,
        random_bytes: Callable[[int], bytes],
        lifetime: int = MAX_LIFETIME,
        refresh_margin: int = 10,
        cache_size: int = 10_000,
    ) -> None:
        if not 0 < lifetime <= MAX_LIFETIME:
            raise ValueError(f"identity: lifetime must be 1..{MAX_LIFETIME} seconds")
        if not 0 <= refresh_margin < lifetime:
            raise ValueError("identity: refresh margin must be below the lifetime")
        if cache_size < 0:
            raise ValueError("identity: cache size must not be negative")
        self._signer = signer
        self._issuer = issuer
        self._random = random_bytes
        self._lifetime = lifetime
        self._margin = refresh_margin
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[object, ...], _Cached] = OrderedDict()

    def token(self, identity: Identity, *, audience: str, now: float) -> str:
        """A valid identity token for ``identity`` at ``audience`` (cached when possible)."""
        key = self._signer()
        cache_key = _cache_key(identity, audience, key.kid)
        hit = self._cache.get(cache_key)
        if hit is not None and now < hit.exp - self._margin:
            self._cache.move_to_end(cache_key)
            return hit.token
        iat = int(now)
        exp = iat + self._lifetime
        payload = {
            "iss": self._issuer,
            "aud": audience,
            "sub": identity.sub,
            "sid": identity.sid,
            "roles": list(identity.roles),
            "tenant": identity.tenant,
            "amr": list(identity.amr),
            "acr": identity.acr,
            "auth_time": identity.auth_time,
            "iat": iat,
            "exp": exp,
            "jti": b64url_encode(self._random(16)),
        }
        token = sign(payload, key, typ=TYP)
        if self._cache_size:
            self._cache.pop(cache_key, None)
            while len(self._cache) >= self._cache_size:
                self._cache.popitem(last=False)
            self._cache[cache_key] = _Cached(token, exp)
        return token

    def forget(self, sid: str) -> None:
        """Drop cached tokens of a session (on revocation or step-up)."""
        for key in [k for k in self._cache if k[0] == sid]:
            del self._cache[key]


def _cache_key(identity: Identity, audience: str, kid: str) -> tuple[object, ...]:
    # The sid first lets forget() find a session's entries; the rest binds every claim.
    # A tuple, not a digest: the frozen Identity hashes and compares field by field.
    return (identity.sid, audience, kid, identity)
