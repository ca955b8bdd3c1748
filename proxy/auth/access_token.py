"""Session access tokens: ``typ: at+jwt`` JWTs signed with the session-signing key.

Rules:

- The issuer asks its key provider for the signer on every issue, so a
  rotation is picked up without a restart; ``kid`` is the signer's RFC 7638
  thumbprint. It signs only with a key of its configured algorithm (EdDSA
  or ES256): a primary of the other algorithm fails closed (503) instead of
  minting tokens the pinned verifiers would refuse. Claims: ``iss aud sub
  sid iat nbf exp jti auth_time amr acr roles tenant`` and ``cnf.jkt`` when
  the session is bound to a DPoP key.
- The verifier pins algorithms (EdDSA by default), asks its key provider for
  the current verification keys, and checks iss, aud, exp/nbf/iat with bounded
  leeway, and every claim's presence and type.
- Verified tokens are cached (LRU, bounded, keyed by the SHA-256 of the token)
  until their ``exp``. A hit still checks expiry against ``now`` and that its
  key is still current, so removing a key from the keyring ends its tokens.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from proxy.auth import claims as c
from proxy.auth.errors import AuthError
from proxy.auth.jose import EDDSA, ES256, PublicKey, SigningKey, b64url_encode, sign, verify

TYP: Final = "at+jwt"
DEFAULT_LIFETIME: Final = 300
MAX_LIFETIME: Final = 3600
_REQUIRED: Final = (
    "iss",
    "aud",
    "sub",
    "sid",
    "iat",
    "nbf",
    "exp",
    "jti",
    "auth_time",
    "amr",
    "acr",
    "roles",
    "tenant",
)


@dataclass(frozen=True)
class AccessClaims:
    """The checked claims of a session access token."""

    iss: str
    aud: str
    sub: str
    sid: str
    iat: int
    nbf: int
    exp: int
    jti: str
    auth_time: int
    amr: tuple[str, ...]
    acr: str
    roles: tuple[str, ...]
    tenant: str | None
    jkt: str | None = None

    def to_payload(self) -> dict[str, object]:
        """The JWT claims set."""
        payload: dict[str, object] = {
            "iss": self.iss,
            "aud": self.aud,
            "sub": self.sub,
            "sid": self.sid,
            "iat": self.iat,
            "nbf": self.nbf,
            "exp": self.exp,
            "jti": self.jti,
            "auth_time": self.auth_time,
            "amr": list(self.amr),
            "acr": self.acr,
            "roles": list(self.roles),
            "tenant": self.tenant,
        }
        if self.jkt is not None:
            payload["cnf"] = {"jkt": self.jkt}
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> AccessClaims:
        """Typed claims from a verified payload; any missing or mistyped claim is refused."""
        for name in _REQUIRED:
            if name not in payload:
                raise c.ClaimsError(f"missing claim {name}")
        return cls(
            iss=c.string(payload, "iss"),
            aud=c.string(payload, "aud"),
            sub=c.string(payload, "sub"),
            sid=c.string(payload, "sid"),
            iat=int(c.numeric_date(payload, "iat")),
            nbf=int(c.numeric_date(payload, "nbf")),
            exp=int(c.numeric_date(payload, "exp")),
            jti=c.string(payload, "jti"),
            auth_time=int(c.numeric_date(payload, "auth_time")),
            amr=c.string_list(payload, "amr"),
            acr=c.string(payload, "acr"),
            roles=c.string_list(payload, "roles"),
            tenant=c.optional_string(payload, "tenant"),
            jkt=_jkt(payload.get("cnf")),
        )


def _jkt(cnf: object) -> str | None:
    if cnf is None:
        return None
    if not isinstance(cnf, dict) or set(cnf) != {"jkt"} or not isinstance(cnf["jkt"], str):
        raise c.ClaimsError("claim cnf is not {jkt}")
    if len(cnf["jkt"]) != 43:  # base64url of a SHA-256 thumbprint
        raise c.ClaimsError("claim cnf.jkt is not a thumbprint")
    return cnf["jkt"]


class AccessTokenIssuer:
    """Issues access tokens with the current session-signing key."""

    def __init__(
        self,
        *,
        signer: Callable[[], SigningKey],
        issuer: str,
        audience: str,
        random_bytes: Callable[[int], bytes],
        lifetime: int = DEFAULT_LIFETIME,
        algorithm: str = EDDSA,
    ) -> None:
        if not 0 < lifetime <= MAX_LIFETIME:
            raise ValueError(f"access token: lifetime must be 1..{MAX_LIFETIME} seconds")
        if algorithm not in (EDDSA, ES256):
            raise ValueError("access token: algorithm must be EdDSA or ES256")
        self.algorithm = algorithm
        self._signer = signer
        self._issuer = issuer
        self._audience = audience
        self._random = random_bytes
        self.lifetime = lifetime

    def issue(
        self,
        *,
        sub: str,
        sid: str,
        auth_time: int,
        amr: Sequence[str],
        acr: str,
        roles: Sequence[str],
        tenant: str | None,
        now: float,
        jkt: str | None = None,
    ) -> tuple[str, AccessClaims]:
        """A signed token and the claims it carries."""
        iat = int(now)
        claims = AccessClaims(
            iss=self._issuer,
            aud=self._audience,
            sub=sub,
            sid=sid,
            iat=iat,
            nbf=iat,
            exp=iat + self.lifetime,
            jti=b64url_encode(self._random(16)),
            auth_time=int(auth_time),
            amr=tuple(amr),
            acr=acr,
            roles=tuple(roles),
            tenant=tenant,
            jkt=jkt,
        )
        key = self._signer()
        if key.algorithm != self.algorithm:
            raise AuthError(
                "access token: the session-signing key does not match the configured algorithm",
                reason="signing_algorithm_mismatch",
                status=503,
                code="service_unavailable",
            )
        return sign(claims.to_payload(), key, typ=TYP), claims


@dataclass(frozen=True)
class _Cached:
    claims: AccessClaims
    kid: str


class AccessTokenVerifier:
    """Verifies access tokens, caching verified ones until they expire."""

    def __init__(
        self,
        *,
        keys: Callable[[], Mapping[str, PublicKey]],
        issuer: str,
        audience: str,
        algorithms: frozenset[str] = frozenset({EDDSA}),
        leeway: float = c.DEFAULT_LEEWAY,
        cache_size: int = 10_000,
    ) -> None:
        if not algorithms or not algorithms <= {EDDSA, ES256}:
            raise ValueError("access token: algorithms must be EdDSA and/or ES256")
        if cache_size < 0:
            raise ValueError("access token: cache size must not be negative")
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = algorithms
        self._leeway = c.check_leeway(leeway)
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._expiries: list[tuple[float, bytes]] = []

    def verify(self, token: str, *, now: float) -> AccessClaims:
        """The claims of a valid token; :class:`~proxy.auth.errors.AuthError` otherwise."""
        self._evict_expired(now)
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        keys = self._keys()
        hit = self._cache.get(digest)
        if hit is not None:
            if now < hit.claims.exp + self._leeway and hit.kid in keys:
                self._cache.move_to_end(digest)
                return hit.claims
            del self._cache[digest]
        header, payload = verify(token, keys=keys, algorithms=self._algorithms, typ=TYP)
        c.check_registered(
            payload,
            now=now,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            required=_REQUIRED,
        )
        claims = AccessClaims.from_payload(payload)
        self._remember(digest, _Cached(claims, str(header["kid"])))
        return claims

    def _remember(self, digest: bytes, entry: _Cached) -> None:
        if self._cache_size == 0:
            return
        while len(self._cache) >= self._cache_size:
            self._cache.popitem(last=False)
        self._cache[digest] = entry
        heapq.heappush(self._expiries, (entry.claims.exp + self._leeway, digest))
        if len(self._expiries) > 2 * self._cache_size:
            # LRU evictions leave stale heap entries behind; rebuild from the cache.
            self._expiries = [(e.claims.exp + self._leeway, d) for d, e in self._cache.items()]
            heapq.heapify(self._expiries)

    def _evict_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, digest = heapq.heappop(self._expiries)
            self._cache.pop(digest, None)

    def cached(self) -> int:
        """Number of verified tokens held (for metrics)."""
        return len(self._cache)
