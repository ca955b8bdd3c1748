"""OpenID Connect relying party: authorization code flow with PKCE, state and nonce.

The gateway signs users in at one configured provider. :class:`OidcRelyingParty`
is the entry point: ``start()`` returns the authorization URL and a sealed flow
cookie value, ``callback()`` turns the provider's redirect back into an
:class:`OidcIdentity`. Discovery and the provider's JWKS are fetched with
timeouts and cached; an unknown ``kid`` triggers a rate-limited JWKS refetch,
so key rotation at the provider is followed. This package holds no aiohttp
server types: the gateway's HTTP layer owns routes and cookies.
"""

from __future__ import annotations

from proxy.oidc.config import OidcClaimMapping, OidcConfig
from proxy.oidc.errors import IdTokenError, OidcError, OidcProviderError, OidcUnavailable
from proxy.oidc.flow import LoginResult, LoginStart, OidcRelyingParty
from proxy.oidc.flow_state import FlowState, safe_return_path
from proxy.oidc.identity import OidcIdentity
from proxy.oidc.sealer import AesGcmFlowSealer, FlowSealer, FlowSealError

__all__ = [
    "AesGcmFlowSealer",
    "FlowSealError",
    "FlowSealer",
    "FlowState",
    "IdTokenError",
    "LoginResult",
    "LoginStart",
    "OidcClaimMapping",
    "OidcConfig",
    "OidcError",
    "OidcIdentity",
    "OidcProviderError",
    "OidcRelyingParty",
    "OidcUnavailable",
    "safe_return_path",
]
