"""The provider's signing keys (JWKS), cached so that key rotation is followed.

Rules:

- Keys come only from the ``jwks_uri`` of the checked discovery document; a
  token's header never names where keys live (``jku``/``x5u`` are refused by
  :mod:`proxy.oidc.id_token`), and ``kid`` is only ever a lookup key here.
- A JWK is usable for signatures when its ``use`` (if any) is ``sig``, its
  ``key_ops`` (if any) include ``verify``, it carries no private member, and
  it is RSA (>= 2048 bits), EC P-256 or OKP Ed25519. A JWK ``alg`` binds the
  key to that algorithm. Unusable keys are skipped (a JWKS may hold encryption
  keys too); a ``kid`` that two usable keys share matches neither.
- The set is refetched when older than ``ttl``, and when a token names a kid
  the cached set lacks (the provider rotated), but at most once per
  ``refetch_interval`` so forged kids cannot make the gateway hammer the
  provider. Concurrent callers share one fetch. A failed fetch raises
  :class:`OidcUnavailable` (503): the login fails closed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proxy.auth.jose import JwsError, b64url_decode, public_key_from_jwk
from proxy.oidc.discovery import Discovery
from proxy.oidc.errors import IdTokenError
from proxy.oidc.http import ProviderHttp

VerificationKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey

KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.\-~+/=:]{1,128}")
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 16384
MAX_KEYS: Final = 100
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Which key type each algorithm needs; Ed25519 is the fully-specified name of EdDSA on Ed25519.
_KEY_TYPE: Final = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP", "Ed25519": "OKP"}
_SAME_ALGORITHM: Final = {"EdDSA": {"EdDSA", "Ed25519"}, "Ed25519": {"EdDSA", "Ed25519"}}


@dataclass(frozen=True)
class ProviderKey:
    """One usable signing key of the provider."""

    kid: str | None
    kty: str
    alg: str | None
    key: VerificationKey

    def fits(self, alg: str) -> bool:
        """Whether this key may verify a token signed with ``alg``."""
        if _KEY_TYPE.get(alg) != self.kty:
            return False
        return self.alg is None or self.alg in _SAME_ALGORITHM.get(alg, {alg})


def parse_jwks(doc: Mapping[str, object]) -> tuple[ProviderKey, ...]:
    """The usable signing keys of a JWKS document (see the module rules)."""
    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise IdTokenError("jwks: no keys array")
    usable = [k for k in (_parse_key(jwk) for jwk in keys[:MAX_KEYS]) if k is not None]
    return tuple(usable)


def select_key(keys: Sequence[ProviderKey], kid: str | None, alg: str) -> VerificationKey | None:
    """The one key for ``(kid, alg)``; with no kid, the only key fitting ``alg`` (OIDC Core 10)."""
    candidates = [k for k in keys if k.fits(alg) and (kid is None or k.kid == kid)]
    return candidates[0].key if len(candidates) == 1 else None


class JwksCache:
    """The provider's keys, refetched on ttl expiry and (rate-limited) on an unknown kid."""

    def __init__(
        self,
        discovery: Discovery,
        http: ProviderHttp,
        *,
        ttl: float,
        refetch_interval: float,
        clock: Callable[[], float],
    ) -> None:
        self._discovery = discovery
        self._http = http
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: tuple[ProviderKey, ...] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, alg: str) -> VerificationKey:
        """The verification key for a token header's ``kid`` and ``alg``; IdTokenError if none."""
        keys = await self._current()
        found = select_key(keys, kid, alg)
        if found is None:
            keys = await self._refetch_for_unknown_kid(keys)
            found = select_key(keys, kid, alg)
        if found is None:
            raise IdTokenError("jwks: no key for kid and alg")
        return found

    async def _current(self) -> tuple[ProviderKey, ...]:
        keys = self._keys
        if keys is not None and self._clock() - self._fetched_at < self._ttl:
            return keys
        async with self._lock:
            keys = self._keys
            if keys is None or self._clock() - self._fetched_at >= self._ttl:
                keys = await self._fetch()
            return keys

    async def _refetch_for_unknown_kid(
        self, seen: tuple[ProviderKey, ...]
    ) -> tuple[ProviderKey, ...]:
        async with self._lock:
            keys = self._keys
            if keys is not None and keys is not seen:
                return keys  # another caller refetched while this one waited
            if self._clock() - self._fetched_at < self._refetch_interval:
                return seen
            return await self._fetch()

    async def _fetch(self) -> tuple[ProviderKey, ...]:
        metadata = await self._discovery.metadata()
        doc = await self._http.get_json(metadata.jwks_uri, what="jwks")
        keys = parse_jwks(doc)
        self._keys, self._fetched_at = keys, self._clock()
        return keys


def _parse_key(jwk: object) -> ProviderKey | None:
    if not isinstance(jwk, dict) or not _usable_for_signatures(jwk):
        return None
    try:
        key = _public_key(jwk)
    except (JwsError, ValueError, TypeError):
        return None
    if key is None:
        return None
    kid, alg = jwk.get("kid"), jwk.get("alg")
    return ProviderKey(
        kid=kid if isinstance(kid, str) else None,
        kty=str(jwk["kty"]),
        alg=alg if isinstance(alg, str) else None,
        key=key,
    )


def _usable_for_signatures(jwk: dict[str, object]) -> bool:
    use, ops, kid, alg = jwk.get("use"), jwk.get("key_ops"), jwk.get("kid"), jwk.get("alg")
    return (
        not _PRIVATE_MEMBERS & jwk.keys()
        and (use is None or use == "sig")
        and (ops is None or (isinstance(ops, list) and "verify" in ops))
        and (kid is None or (isinstance(kid, str) and KID_PATTERN.fullmatch(kid) is not None))
        and (alg is None or alg in _KEY_TYPE)
    )


def _public_key(jwk: dict[str, object]) -> VerificationKey | None:
    kty = jwk.get("kty")
    if kty == "RSA":
        n, e = _uint(jwk.get("n")), _uint(jwk.get("e"))
        if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
            return None
        return rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "EC" and jwk.get("crv") == "P-256":
        return public_key_from_jwk({m: jwk.get(m) for m in ("kty", "crv", "x", "y")})
    if kty == "OKP" and jwk.get("crv") == "Ed25519":
        return public_key_from_jwk({m: jwk.get(m) for m in ("kty", "crv", "x")})
    return None


def _uint(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("jwks: missing integer member")
    raw = b64url_decode(value)
    if not raw or raw[0] == 0:
        raise ValueError("jwks: integer member not minimal")
    return int.from_bytes(raw, "big")
