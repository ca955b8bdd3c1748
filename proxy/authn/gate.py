"""Admission of one request to one route: authenticate, check CSRF, authorize.

The result is the :class:`~proxy.authn.exchange.SessionExchange` that signs
the forwarded request and applies session side effects to the response, or
an early response (a redirect for browser navigations: to the login page
without a session, to the MFA page when the session lacks MFA or freshness).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from kms_client.rng import random_bytes
from policy.model import Route
from proxy.auth.access_token import AccessClaims
from proxy.auth.dpop import DPoPError, DPoPNonceRequired, DPoPNonces, DPoPVerifier
from proxy.auth.errors import StepUpRequired
from proxy.auth.jose import b64url_encode
from proxy.authn.exchange import Prover, SessionExchange
from proxy.authn.http import (
    authorize,
    bearer_token,
    check_csrf,
    is_navigation,
    login_redirect,
    own_origin,
    step_up_redirect,
)
from proxy.authn.service import SessionService
from proxy.errors import ProxyError
from proxy.mfa.service import MfaService
from proxy.oidc.flow import OidcRelyingParty

_INVALID_PROOF = {"WWW-Authenticate": 'DPoP error="invalid_dpop_proof"'}


@dataclass(frozen=True, slots=True)
class Gate:
    """Everything admission needs that lives as long as the worker."""

    prover: Prover
    service: SessionService | None
    strip: tuple[str, ...] = ()
    mfa: MfaService | None = None
    oidc: OidcRelyingParty | None = None
    dpop: DPoPVerifier | None = None
    dpop_nonces: DPoPNonces | None = None

    async def check_binding(
        self, request: web.Request, claims: AccessClaims, *, bearer: str | None
    ) -> None:
        """A DPoP-bound session (``cnf.jkt``) must prove its key on this request; 401 if not."""
        if claims.jkt is None:
            return
        jkt = await self._proof(request, access_token=bearer)
        if jkt != claims.jkt:
            raise ProxyError("invalid_dpop_proof", headers=dict(_INVALID_PROOF))

    async def _proof(self, request: web.Request, *, access_token: str | None) -> str:
        """Verify the request's DPoP proof; the thumbprint (jkt) of its key."""
        header = request.headers.get("DPoP")
        if self.dpop is None or self.service is None or header is None:
            raise ProxyError(
                "invalid_dpop_proof",
                headers=dict(_INVALID_PROOF),
            )
        try:
            proof = await self.dpop.verify(
                header,
                method=request.method,
                url=own_origin(request) + request.path,
                now=time.time(),
                access_token=access_token,
                require_nonce=self.service.config.dpop.require_nonce,
            )
        except DPoPNonceRequired as e:
            nonce = self.dpop_nonces.issue() if self.dpop_nonces is not None else ""
            raise ProxyError(
                "use_dpop_nonce",
                headers={"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": nonce},
            ) from e
        except DPoPError as e:
            raise ProxyError(
                "invalid_dpop_proof",
                headers=dict(_INVALID_PROOF),
            ) from e
        return proof.jkt

    async def admit(
        self, request: web.Request, route: Route, *, audience: str, authority: str
    ) -> SessionExchange | web.Response:
        """The exchange for an admitted request, or the response that ends it here."""
        exchange = SessionExchange(
            prover=self.prover,
            service=self.service,
            claims=None,
            audience=audience,
            authority=authority,
            sign_body=route.auth.sign_body if route.auth is not None else False,
            strip=self.strip,
        )
        service = self.service
        if service is None:
            if route.auth is not None:
                raise ProxyError("service_unavailable", "route needs sessions; none configured")
            return exchange
        cookies = service.config.cookies
        exchange.access_cookie = request.cookies.get(cookies.access)
        login = service.config.login
        is_login = login is not None and route.name == login.route
        if is_login:
            exchange.login_nonce = b64url_encode(random_bytes(16))
            if "DPoP" in request.headers:  # the client binds the new session to its key
                exchange.login_jkt = await self._proof(request, access_token=None)
        bearer = bearer_token(request)
        has_cookies = cookies.access in request.cookies or cookies.refresh in request.cookies
        if bearer is None and (has_cookies or is_login):
            # Before any refresh, login or logout a forged cross-site request could cause.
            check_csrf(request, service.config)
        if route.auth is None:
            return exchange
        found = await service.authenticate(
            bearer or exchange.access_cookie,
            None if bearer else request.cookies.get(cookies.refresh),
        )
        if found is None:
            if is_navigation(request):
                return login_redirect(request, service.config)
            raise ProxyError(
                "unauthorized", headers={"WWW-Authenticate": 'Bearer realm="tokengate"'}
            )
        exchange.claims = found.claims
        exchange.issued = found.issued
        if not _top_level_navigation(request):
            await self.check_binding(request, found.claims, bearer=bearer)
        try:
            authorize(route.auth, found.claims)
        except StepUpRequired as e:
            await service.auditor.emit(
                "mfa.step_up_demanded",
                sub=found.claims.sub,
                reason=e.reason or "step_up",
                route=route.name,
                acr=",".join(e.acr_values)[:64],
            )
            if is_navigation(request):
                return step_up_redirect(request, service.config)
            raise ProxyError(
                "insufficient_user_authentication", headers={"WWW-Authenticate": e.challenge()}
            ) from e
        return exchange


def _top_level_navigation(request: web.Request) -> bool:
    """A safe top-level navigation: the one request a DPoP-bound cookie session may send bare."""
    return (
        request.method in ("GET", "HEAD")
        and request.headers.get("Sec-Fetch-Mode", "").lower() == "navigate"
    )
