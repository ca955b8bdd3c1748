"""One request's proofs and session side effects, as forwarding hooks.

On the way up: inbound identity headers are already gone (the handler strips
them); this adds the login nonce on the login route, the ``Tokengate-Identity``
JWT (the session's, or an anonymous one on public routes) and the RFC 9421
signature over the final headers (with ``content-digest`` when the body is
buffered). On the way down: every ``Tokengate-*`` response header is removed;
a ``Tokengate-Login`` assertion on the login route's 2xx answer creates the
session (or the login is refused with 401 instead of the backend's answer);
``Tokengate-Logout`` ends the session; refreshed tokens become cookies.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from proxy.auth.access_token import AccessClaims
from proxy.auth.errors import AuthError
from proxy.authn.http import (
    LOGIN_ASSERTION,
    LOGIN_NONCE,
    LOGOUT,
    clear_session_cookies,
    set_session_cookies,
    strip_identity_headers,
)
from proxy.authn.service import IssuedTokens, SessionService
from proxy.errors import ProxyError
from proxy.proof.digest import content_digest
from proxy.proof.identity import Identity, IdentityMinter
from proxy.proof.message_signature import UpstreamSigner

log = logging.getLogger("tokengate.sessions")
IDENTITY_HEADER = "Tokengate-Identity"
ANONYMOUS = Identity(sub="", sid="", roles=(), tenant=None, amr=(), acr="", auth_time=0)


def identity_of(claims: AccessClaims | None) -> Identity:
    """What the backend is told about the caller."""
    if claims is None:
        return ANONYMOUS
    return Identity(
        sub=claims.sub,
        sid=claims.sid,
        roles=claims.roles,
        tenant=claims.tenant,
        amr=claims.amr,
        acr=claims.acr,
        auth_time=claims.auth_time,
    )


@dataclass(slots=True)
class Prover:
    """The gateway's signing machinery toward backends (shared by all requests)."""

    minter: IdentityMinter
    signer: UpstreamSigner

    def prove(
        self,
        headers: CIMultiDict[str],
        *,
        identity: Identity,
        audience: str,
        method: str,
        authority: str,
        target: str,
        body: bytes | None,
        now: float,
    ) -> None:
        """Add the identity token, the digest (buffered bodies) and the signature."""
        headers[IDENTITY_HEADER] = self.minter.token(identity, audience=audience, now=now)
        if body is not None:
            headers["Content-Digest"] = content_digest(body)
        signed = self.signer.sign_headers(
            method=method,
            authority=authority,
            target=target,
            headers=headers,
            now=now,
            streamed=body is None,
        )
        headers["Signature-Input"] = signed.signature_input
        headers["Signature"] = signed.signature


@dataclass(slots=True)
class SessionExchange:
    """Forwarding hooks for one request (see the module rules)."""

    prover: Prover
    service: SessionService | None
    claims: AccessClaims | None
    audience: str
    authority: str
    sign_body: bool = False
    strip: tuple[str, ...] = ()
    login_nonce: str | None = None
    login_jkt: str | None = None  # the client key a DPoP proof on the login request named
    issued: IssuedTokens | None = None
    access_cookie: str | None = None

    @property
    def buffered(self) -> bool:
        """Buffer when the route signs its body."""
        return self.sign_body

    def prepare(
        self, headers: CIMultiDict[str], *, method: str, target: str, body: bytes | None
    ) -> None:
        """Login nonce, identity and signature on the upstream request."""
        strip_identity_headers(headers, self.strip)
        if self.login_nonce is not None:
            headers[LOGIN_NONCE] = self.login_nonce
        self.prover.prove(
            headers,
            identity=identity_of(self.claims),
            audience=self.audience,
            method=method,
            authority=self.authority,
            target=target,
            body=body,
            now=time.time(),
        )

    async def on_response(self, status: int, resp: web.StreamResponse) -> None:
        """Strip ``Tokengate-*``; apply login, logout and refreshed cookies."""
        assertion = resp.headers.get(LOGIN_ASSERTION)
        logout = LOGOUT in resp.headers
        for name in [k for k in resp.headers if k.lower().startswith("tokengate-")]:
            resp.headers.popall(name, None)
        if self.issued is not None and self.service is not None:
            set_session_cookies(resp, self.issued, self.service.config)
        if assertion is not None:
            await self._login(status, assertion, resp)
        if logout and self.service is not None:
            await self._logout(self.service, resp)

    async def _login(self, status: int, assertion: str, resp: web.StreamResponse) -> None:
        if self.login_nonce is None or self.service is None or not 200 <= status < 300:
            log.warning("ignored a login assertion outside the login route's success answers")
            return
        try:
            issued = await self.service.login(assertion, nonce=self.login_nonce, jkt=self.login_jkt)
        except AuthError as e:
            await self.service.record_login_failure(e.reason or "invalid")
            raise ProxyError("login_failed", "backend login assertion refused") from e
        set_session_cookies(resp, issued, self.service.config)

    async def _logout(self, service: SessionService, resp: web.StreamResponse) -> None:
        claims = self.claims
        if claims is None and self.access_cookie:
            found = await service.authenticate(self.access_cookie, None)
            claims = found.claims if found is not None else None
        if claims is not None:
            await service.logout(claims)
        clear_session_cookies(resp, service.config)
