"""The ``sessions:`` section of gateway.yaml.

Access tokens are short-lived JWTs (EdDSA, or ES256 by ``access_algorithm``)
signed with the keyring's session-signing key; refresh tokens are opaque and
rotate on every use (see :mod:`proxy.sessions`). The backend asserts a login on its own login route
(``login``) by answering with a ``Tokengate-Login`` JWT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from policy.types import Duration, StrictModel
from proxy.mfa.config import MfaConfig
from proxy.oidc.config import OidcConfig
from proxy.sessions.config import SessionStoreConfig


class CookieSettings(StrictModel):
    """Names and flags of the session cookies (always HttpOnly, Path=/)."""

    access: str = Field("__Host-tg-at", description="cookie holding the access token")
    refresh: str = Field("__Host-tg-rt", description="cookie holding the refresh token")
    same_site: Literal["Lax", "Strict"] = Field("Lax", description="SameSite attribute")
    secure: bool = Field(
        True,
        description="Secure attribute; __Host- names require it (turn off only for plain-HTTP dev)",
    )

    @model_validator(mode="after")
    def _host_prefix(self) -> CookieSettings:
        if not self.secure and (
            self.access.startswith("__Host-") or self.refresh.startswith("__Host-")
        ):
            raise ValueError("__Host- cookies must be Secure: rename them or keep secure: true")
        return self


class LoginAssertionSettings(StrictModel):
    """How the backend's ``Tokengate-Login`` JWT is verified."""

    route: str = Field(
        description="name of the backend's login route (only its answers may log in)"
    )
    algorithm: Literal["HS256", "EdDSA", "ES256"] = Field(
        "HS256", description="signature algorithm"
    )
    secret_file: Path | None = Field(
        None, description="HS256 shared secret file (>= 32 bytes, 0600)"
    )
    public_key_file: Path | None = Field(None, description="PEM public key for EdDSA / ES256")
    audience: str = Field("tokengate", description="the aud the backend puts in its assertion")
    issuer: str | None = Field(None, description="the iss the assertion must carry, if any")

    @model_validator(mode="after")
    def _key(self) -> LoginAssertionSettings:
        if self.algorithm == "HS256" and self.secret_file is None:
            raise ValueError("HS256 login assertions need secret_file")
        if self.algorithm != "HS256" and self.public_key_file is None:
            raise ValueError(f"{self.algorithm} login assertions need public_key_file")
        return self


class DPoPSettings(StrictModel):
    """RFC 9449 proofs of possession for sessions bound to a client key."""

    require_nonce: bool = Field(False, description="demand a fresh server nonce (DPoP-Nonce)")
    max_age: Duration = Field(60.0, gt=0, le=300, description="oldest acceptable proof (iat)")


class SessionsConfig(StrictModel):
    """Gateway-owned sessions."""

    store: SessionStoreConfig = Field(
        default_factory=SessionStoreConfig, description="session store"
    )
    issuer: str = Field("tokengate", description="iss of access tokens")
    audience: str = Field("tokengate", description="aud of access tokens")
    access_lifetime: Duration = Field(300.0, gt=0, le=3600, description="access token lifetime")
    access_algorithm: Literal["EdDSA", "ES256"] = Field(
        "EdDSA",
        description="access token signature; the only one accepted (a switch rotates the key)",
    )
    leeway: Duration = Field(30.0, ge=0, le=120, description="clock skew allowed on token times")
    cookies: CookieSettings = Field(default_factory=CookieSettings, description="session cookies")
    login: LoginAssertionSettings | None = Field(None, description="backend login assertion")
    oidc: OidcConfig | None = Field(None, description="OpenID Connect login (relying party)")
    mfa: MfaConfig = Field(default_factory=MfaConfig, description="second factors: TOTP, WebAuthn")
    dpop: DPoPSettings = Field(default_factory=DPoPSettings, description="DPoP-bound sessions")
    login_page: str = Field("/login", description="where browsers without a session are sent")
    allowed_origins: list[str] = Field(
        default_factory=list, description="extra origins allowed to send unsafe requests (CSRF)"
    )
    strip_headers: list[str] = Field(
        default_factory=lambda: [
            "X-Forwarded-User",
            "X-Forwarded-Email",
            "X-Remote-User",
            "Remote-User",
            "X-User",
            "X-Auth-Request-User",
            "X-Auth-Request-Email",
        ],
        description="identity headers clients may never send to the backend (besides Tokengate-*)",
    )
