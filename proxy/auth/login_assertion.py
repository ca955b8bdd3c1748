"""The backend's ``Tokengate-Login`` assertion: who just logged in, signed by the app.

Rules:

- Signed with the one configured key: an HS256 shared secret (at least 32
  bytes) or an Ed25519 / P-256 public key; the algorithm follows from the key,
  so a secret never verifies an asymmetric token and vice versa. Without a
  configured ``kid`` the token must carry none (most apps set none); with one,
  the token's ``kid`` must equal it.
- ``typ`` must be the configured type (default ``tokengate-login+jwt``).
- ``aud`` is the gateway's audience; ``iss`` too when configured.
- ``iat`` and ``exp`` are present, ``exp`` in the future and at most 60 s after
  ``iat``; ``iat`` not in the future beyond the leeway.
- ``nonce`` equals the single-use nonce the gateway put on that login request;
  ``jti`` is single-use through a :class:`~proxy.auth.claims.ReplayGuard`,
  checked last so that nothing unverified can consume one.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from proxy.auth import claims as c
from proxy.auth.jose import EDDSA, ES256, HS256, HmacKey, PublicKey, verify

DEFAULT_TYP: Final = "tokengate-login+jwt"
MAX_LIFETIME: Final = 60.0
REPLAY_NAMESPACE: Final = "login-jti"


@dataclass(frozen=True)
class LoginAssertion:
    """The user the backend asserted, ready to become a session."""

    sub: str
    roles: tuple[str, ...]
    tenant: str | None
    amr: tuple[str, ...]
    jti: str
    iat: int


class LoginAssertionVerifier:
    """Verifies ``Tokengate-Login`` JWTs against one configured key."""

    def __init__(
        self,
        *,
        key: HmacKey | Ed25519PublicKey | ec.EllipticCurvePublicKey,
        audience: str,
        replay: c.ReplayGuard,
        issuer: str | None = None,
        kid: str | None = None,
        typ: str = DEFAULT_TYP,
        leeway: float = c.DEFAULT_LEEWAY,
    ) -> None:
        self._algorithms = frozenset({_algorithm_of(key)})
        self._keys: dict[str, PublicKey] = {kid or "": key}
        self._require_kid = kid is not None
        self._audience = audience
        self._issuer = issuer
        self._replay = replay
        self._typ = typ
        self._leeway = c.check_leeway(leeway)

    async def verify(self, token: str, *, nonce: str, now: float) -> LoginAssertion:
        """The asserted login; :class:`~proxy.auth.errors.AuthError` for anything wrong."""
        _, payload = verify(
            token,
            keys=self._keys,
            algorithms=self._algorithms,
            typ=self._typ,
            require_kid=self._require_kid,
        )
        c.check_registered(
            payload,
            now=now,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            required=("aud", "exp", "iat", "jti", "nonce", "sub"),
        )
        iat = c.numeric_date(payload, "iat")
        exp = c.numeric_date(payload, "exp")
        if exp - iat > MAX_LIFETIME:
            raise c.ClaimsError("login assertion lives longer than 60 s")
        if exp <= now:  # no leeway here: the assertion is fresh by construction
            raise c.ClaimsError("login assertion expired")
        sent = c.string(payload, "nonce")
        if not nonce or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise c.ClaimsError("login assertion nonce mismatch")
        assertion = LoginAssertion(
            sub=c.string(payload, "sub"),
            roles=c.string_list(payload, "roles", required=False),
            tenant=c.optional_string(payload, "tenant"),
            amr=c.string_list(payload, "amr", required=False),
            jti=c.string(payload, "jti", max_length=256),
            iat=int(iat),
        )
        ttl = exp - now + self._leeway
        if not await self._replay.first_use(REPLAY_NAMESPACE, assertion.jti, ttl):
            raise c.ClaimsError("login assertion jti reused")
        return assertion


def _algorithm_of(key: object) -> str:
    if isinstance(key, HmacKey):
        return HS256
    if isinstance(key, Ed25519PublicKey):
        return EDDSA
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return ES256
    raise ValueError("login assertion: key must be an HS256 secret, Ed25519 or P-256 public key")
