"""Session lifecycle over the store and the keyring: login, authenticate, refresh, logout.

Rules:
- An access token is accepted only if its signature, claims and lifetime
  check out AND the store says its session, user and global generation are
  not revoked (one pipelined round trip on Redis): revocation is immediate on
  every replica.
- An expired or missing access token with a valid refresh token is served:
  the refresh token rotates (reuse of an old one revokes the family, within
  the store's grace window a concurrent tab gets a fresh access token only)
  and new cookies go out with the response.
- Sessions are created only from a verified backend login assertion (nonce
  and jti single-use) or, later, OIDC and MFA; every create, refresh, reuse
  and logout is audited. An act whose audit entry cannot be written fails.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

from audit import Auditor
from kms_client import KeyManager
from kms_client.rng import random_bytes
from proxy.auth.access_token import AccessClaims, AccessTokenIssuer, AccessTokenVerifier
from proxy.auth.errors import AuthError
from proxy.auth.jose import PublicKey
from proxy.auth.login_assertion import LoginAssertion, LoginAssertionVerifier
from proxy.authn.config import SessionsConfig
from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected
from proxy.sessions.model import Session, SessionGrant
from proxy.sessions.store import SessionStore

# acr of a session without any authentication-method reference (OIDC's "0": no
# assurance). The access token's acr claim is required and non-empty, so an
# empty value would make the session's own tokens fail verification.
NO_ASSURANCE = "0"


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """Tokens to hand to the client; ``refresh`` is None when only the access token changed."""

    access: str
    access_max_age: int
    refresh: str | None
    refresh_max_age: int


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A caller with a live session, and new tokens when a refresh just happened."""

    claims: AccessClaims
    issued: IssuedTokens | None = None


class _SessionKeys:
    """Session-signing public keys of one algorithm by kid, recomputed when the keyring changes.

    Keys of the other algorithm are left out: with the algorithm pinned in the
    verifier too, a token can never pick its own verification algorithm.
    """

    def __init__(self, keys: KeyManager, algorithm: str) -> None:
        self._keys = keys
        self._algorithm = algorithm
        self._version: int | None = None
        self._by_kid: Mapping[str, PublicKey] = {}

    def __call__(self) -> Mapping[str, PublicKey]:
        version = self._keys.keyring_version
        if version != self._version or version is None:
            self._by_kid = {
                s.kid: s.public_key()
                for s in self._keys.verifiers("session-signing")
                if s.algorithm == self._algorithm
            }
            self._version = version
        return self._by_kid


class SessionService:
    """What the HTTP layer calls; holds no per-request state."""

    def __init__(
        self,
        config: SessionsConfig,
        *,
        store: SessionStore,
        keys: KeyManager,
        auditor: Auditor,
        login: LoginAssertionVerifier | None,
    ) -> None:
        self.config = config
        self.store = store
        self.auditor = auditor
        self._login = login
        self._issuer = AccessTokenIssuer(
            signer=lambda: keys.signer("session-signing"),
            issuer=config.issuer,
            audience=config.audience,
            random_bytes=random_bytes,
            lifetime=int(config.access_lifetime),
            algorithm=config.access_algorithm,
        )
        self._verifier = AccessTokenVerifier(
            keys=_SessionKeys(keys, config.access_algorithm),
            issuer=config.issuer,
            audience=config.audience,
            algorithms=frozenset({config.access_algorithm}),
            leeway=config.leeway,
        )

    # ---- tokens ----

    def _issue(
        self, session: Session, refresh: str | None, *, now: float
    ) -> tuple[str, AccessClaims, IssuedTokens]:
        token, claims = self._issuer.issue(
            sub=session.sub,
            sid=session.sid,
            auth_time=session.auth_time,
            amr=list(session.amr),
            acr=session.acr or NO_ASSURANCE,
            roles=list(session.roles),
            tenant=session.tenant,
            now=now,
            jkt=session.cnf_jkt,
        )
        refresh_age = max(0, int(session.absolute_expiry - now))
        issued = IssuedTokens(token, int(self.config.access_lifetime), refresh, refresh_age)
        return token, claims, issued

    async def authenticate(
        self, access: str | None, refresh: str | None, *, now: float | None = None
    ) -> Authenticated | None:
        """The caller's live session, refreshing when needed; None when there is none."""
        now = time.time() if now is None else now
        if access:
            try:
                claims = self._verifier.verify(access, now=now)
            except AuthError:
                claims = None
            if claims is not None:
                if await self.store.is_revoked(claims.sid, claims.sub, claims.iat, now=now):
                    return None
                return Authenticated(claims)
        if refresh:
            return await self._refresh(refresh, now=now)
        return None

    async def _refresh(self, refresh: str, *, now: float) -> Authenticated | None:
        try:
            result = await self.store.rotate(refresh, now=now)
        except RefreshReuseDetected as e:
            await self.auditor.emit(
                "session.refresh_reuse",
                sub=e.sub,
                sid_hash=short_hash(e.sid),
                family_revoked=e.revoked,
            )
            return None
        except RefreshRejected:
            return None
        _, claims, issued = self._issue(result.session, result.refresh_token, now=now)
        await self.auditor.emit(
            "session.refresh",
            sub=claims.sub,
            sid_hash=short_hash(claims.sid),
            outcome=result.outcome,
        )
        return Authenticated(claims, issued)

    # ---- login / logout ----

    async def login(
        self, assertion: str, *, nonce: str, jkt: str | None = None, now: float | None = None
    ) -> IssuedTokens:
        """A new session from the backend's verified login assertion."""
        if self._login is None:
            raise AuthError(
                "sessions: backend login assertions are not configured", reason="no_login"
            )
        now = time.time() if now is None else now
        asserted: LoginAssertion = await self._login.verify(assertion, nonce=nonce, now=now)
        grant = SessionGrant(
            sub=asserted.sub,
            tenant=asserted.tenant,
            roles=tuple(asserted.roles),
            amr=tuple(asserted.amr),
            acr="1" if asserted.amr else NO_ASSURANCE,
            cnf_jkt=jkt,
        )
        return await self.create_session(grant, method="backend_assertion", now=now)

    async def create_session(
        self, grant: SessionGrant, *, method: str, now: float | None = None
    ) -> IssuedTokens:
        """A new session for a verified identity (backend assertion, OIDC, MFA step-up)."""
        now = time.time() if now is None else now
        created = await self.store.create(grant, now=now)
        await self.auditor.emit(
            "session.create",
            sub=grant.sub,
            sid_hash=short_hash(created.session.sid),
            method=method,
            amr=list(grant.amr),
        )
        _, _, issued = self._issue(created.session, created.refresh_token, now=now)
        return issued

    async def step_up(
        self,
        claims: AccessClaims,
        *,
        amr: list[str],
        acr: str,
        auth_time: int,
        now: float | None = None,
    ) -> IssuedTokens:
        """After a passed second factor: a NEW session id with raised amr/acr; the old one ends.

        A new id means a session fixed or stolen before the step-up gains nothing from it.
        """
        grant = SessionGrant(
            sub=claims.sub,
            tenant=claims.tenant,
            roles=claims.roles,
            amr=tuple(dict.fromkeys((*claims.amr, *amr))),
            acr=acr,
            auth_time=auth_time,
            cnf_jkt=claims.jkt,
            mfa_enrolled=True,
            mfa_time=float(auth_time),
        )
        issued = await self.create_session(grant, method="mfa", now=now)
        await self.store.revoke(claims.sid)
        return issued

    async def record_login_failure(self, reason: str) -> None:
        """Audit a refused backend login assertion (the reason is a fixed word)."""
        await self.auditor.emit(
            "session.login_failed", method="backend_assertion", reason=reason[:64]
        )

    async def logout(self, claims: AccessClaims) -> None:
        """End the caller's session everywhere."""
        await self.auditor.emit(
            "session.revoke", sub=claims.sub, sid_hash=short_hash(claims.sid), actor="self"
        )
        await self.store.revoke(claims.sid)


def short_hash(value: str) -> str:
    """A log- and audit-safe handle for a session id (never the id itself)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
