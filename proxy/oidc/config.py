"""The ``oidc:`` section: one OpenID provider the gateway signs users in with.

Validated once at load. The issuer must be ``https://`` (plain ``http://`` is
accepted only for a loopback host, for local providers and tests); the client
secret is a ``SecretStr`` (``${ENV}`` references are resolved by the config
loader); ID-token algorithms are pinned here and intersected with what the
provider announces, and can never include ``none`` or an HMAC algorithm.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from policy.types import Duration, StrictModel
from proxy.auth.claims import MAX_LEEWAY

IdTokenAlgorithm = Literal["RS256", "PS256", "ES256", "EdDSA", "Ed25519"]
DEFAULT_ALGORITHMS: Final[tuple[IdTokenAlgorithm, ...]] = ("RS256", "PS256", "ES256", "EdDSA")
DEFAULT_REDIRECT_PATH: Final = "/.tokengate/oidc/callback"
_MAX_CLAIM_PATH: Final = 8


def _claim_path(value: object) -> object:
    """A bare claim name is a path of one key."""
    return (value,) if isinstance(value, str) else value


ClaimPath = Annotated[tuple[str, ...], BeforeValidator(_claim_path)]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal (the only hosts plain http is allowed for)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_provider_url(url: str, *, what: str) -> str:
    """``url`` if absolute https (http for loopback), without credentials or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host or parts.username or parts.password or parts.fragment:
        raise ValueError(f"oidc: {what} must be an absolute URL without credentials or fragment")
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(host)):
        raise ValueError(f"oidc: {what} must use https (http only for a loopback host)")
    return url


class OidcClaimMapping(StrictModel):
    """Which ID-token claims give roles and tenant (amr, acr, auth_time are the standard ones)."""

    roles: ClaimPath = Field(
        ("roles",), description="key path of the roles claim, e.g. roles or [realm_access, roles]"
    )
    tenant: ClaimPath | None = Field(
        None, description="key path of the tenant claim; unset means no tenant"
    )

    @field_validator("roles", "tenant")
    @classmethod
    def _path(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and (not 1 <= len(v) <= _MAX_CLAIM_PATH or not all(v)):
            raise ValueError(f"oidc: a claim path has 1..{_MAX_CLAIM_PATH} non-empty keys")
        return v


class OidcConfig(StrictModel):
    """An OpenID Connect provider: authorization code flow with PKCE, state and nonce."""

    issuer: str = Field(description="issuer identifier, exactly as the provider's discovery says")
    client_id: str = Field(min_length=1, max_length=512, description="client id at the provider")
    client_secret: SecretStr = Field(description="client secret (use ${ENV} in the file)")
    redirect_path: str = Field(
        DEFAULT_REDIRECT_PATH, description="callback path on the gateway's public origin"
    )
    scopes: tuple[str, ...] = Field(
        ("openid", "profile", "email"), description="scopes requested; must include openid"
    )
    id_token_algorithms: tuple[IdTokenAlgorithm, ...] = Field(
        DEFAULT_ALGORITHMS, description="ID-token signature algorithms accepted (never none or HS*)"
    )
    trusted_audiences: tuple[str, ...] = Field(
        (), description="extra ID-token audiences tolerated besides client_id (azp then required)"
    )
    token_endpoint_auth: Literal["auto", "client_secret_basic", "client_secret_post"] = Field(
        "auto", description="client authentication at the token endpoint; auto follows discovery"
    )
    claims: OidcClaimMapping = Field(
        default_factory=OidcClaimMapping, description="where roles and tenant come from"
    )
    leeway: Duration = Field(30.0, description="clock skew tolerated on exp/iat/auth_time")
    login_timeout: Duration = Field(600.0, description="how long a started login stays valid")
    connect_timeout: Duration = Field(5.0, description="time to connect to the provider")
    request_timeout: Duration = Field(10.0, description="whole-request timeout for provider calls")
    discovery_cache_ttl: Duration = Field(3600.0, description="how long discovery is cached")
    jwks_cache_ttl: Duration = Field(3600.0, description="how long the provider's JWKS is cached")
    jwks_refetch_interval: Duration = Field(
        30.0, description="at most one JWKS refetch for an unknown kid per this interval"
    )
    ca_file: Path | None = Field(
        None, description="PEM CA bundle to verify the provider (default: system store)"
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, v: str) -> str:
        check_provider_url(v, what="issuer")
        if urlsplit(v).query:
            raise ValueError("oidc: issuer cannot carry a query")
        return v

    @field_validator("redirect_path")
    @classmethod
    def _redirect_path(cls, v: str) -> str:
        parts = urlsplit(v)
        if not v.startswith("/") or v.startswith("//") or parts.query or parts.fragment:
            raise ValueError("oidc: redirect_path must be an absolute path without query")
        if any(ch in v for ch in "\\ \t\r\n"):
            raise ValueError("oidc: redirect_path must be a plain path")
        if not v.startswith("/.tokengate/"):
            # Anything else would be routed to the backend, not answered by the gateway.
            raise ValueError("oidc: redirect_path must be under /.tokengate/")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in v:
            raise ValueError("oidc: scopes must include openid")
        if not all(s and s.isprintable() and " " not in s and '"' not in s for s in v):
            raise ValueError("oidc: scopes must be plain tokens")
        return v

    @field_validator("id_token_algorithms")
    @classmethod
    def _algorithms(cls, v: tuple[IdTokenAlgorithm, ...]) -> tuple[IdTokenAlgorithm, ...]:
        if not v:
            raise ValueError("oidc: id_token_algorithms cannot be empty")
        return v

    @model_validator(mode="after")
    def _times(self) -> OidcConfig:
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"oidc: leeway must be between 0 and {MAX_LEEWAY:g} seconds")
        if not 30 <= self.login_timeout <= 3600:
            raise ValueError("oidc: login_timeout must be between 30s and 1h")
        for name in ("connect_timeout", "request_timeout"):
            if not 0 < getattr(self, name) <= 120:
                raise ValueError(f"oidc: {name} must be between 0 and 120 seconds")
        if not 60 <= self.jwks_cache_ttl <= 86400 or not 60 <= self.discovery_cache_ttl <= 86400:
            raise ValueError("oidc: cache ttls must be between 1m and 24h")
        if not 1 <= self.jwks_refetch_interval <= 3600:
            raise ValueError("oidc: jwks_refetch_interval must be between 1s and 1h")
        if self.client_id in self.trusted_audiences:
            raise ValueError("oidc: trusted_audiences lists client_id itself")
        return self
