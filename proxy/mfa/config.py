"""The ``mfa:`` section of gateway.yaml: store, TOTP parameters, lockout, WebAuthn party, page."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from policy.types import Duration, StrictModel
from proxy.auth.recovery_codes import MAX_COUNT
from proxy.auth.totp import TotpAlgorithm, TotpParams
from proxy.auth.webauthn import RelyingParty


class WebAuthnConfig(StrictModel):
    """The WebAuthn relying party: the rp id and the exact browser origins allowed."""

    rp_id: str = Field(description="relying party id: the site's host name or a parent domain")
    rp_name: str = Field("tokengate", description="name authenticators show to the user")
    origins: list[str] = Field(
        description="exact origins allowed in clientDataJSON (https://host[:port])"
    )
    require_user_verification: bool = Field(
        False, description="refuse keys that did not verify the user (PIN, biometrics)"
    )
    timeout_ms: int = Field(60_000, ge=10_000, le=600_000, description="ceremony timeout hint")

    @model_validator(mode="after")
    def _party(self) -> WebAuthnConfig:
        self.relying_party()  # ValueError names the bad origin or rp id
        return self

    def relying_party(self) -> RelyingParty:
        """The validated :class:`~proxy.auth.webauthn.RelyingParty`."""
        return RelyingParty(
            rp_id=self.rp_id,
            name=self.rp_name,
            origins=tuple(self.origins),
            timeout_ms=self.timeout_ms,
            require_user_verification=self.require_user_verification,
        )


class MfaConfig(StrictModel):
    """Second factors: TOTP, recovery codes, WebAuthn; replay protection and lockout."""

    store: str | None = Field(
        None, description="MFA record store URI: sqlite:///path or redis(s)://; default sqlite"
    )
    issuer: str = Field("tokengate", description="issuer shown in authenticator apps")
    totp_algorithm: Literal["SHA1", "SHA256", "SHA512"] = Field(
        "SHA1", description="TOTP HMAC hash (SHA1 is what every app supports)"
    )
    totp_digits: Literal[6, 7, 8] = Field(6, description="digits per TOTP code")
    totp_period: int = Field(30, ge=15, le=120, description="seconds per TOTP code")
    enrolment_ttl: Duration = Field(
        600.0, ge=60, le=3600, description="time to confirm a new TOTP enrolment"
    )
    max_failures: int = Field(
        5, ge=1, le=20, description="failed codes within failure_window that lock MFA"
    )
    failure_window: Duration = Field(900.0, ge=60, description="window counting failures")
    lockout: Duration = Field(900.0, ge=60, description="how long a lock refuses every code")
    recovery_codes: int = Field(10, ge=1, le=MAX_COUNT, description="recovery codes per issue")
    challenge_ttl: Duration = Field(
        300.0, ge=30, le=900, description="lifetime of a WebAuthn challenge"
    )
    acr_otp: str = Field("mfa", description="acr after a TOTP pass")
    acr_hwk: str = Field("mfa", description="acr after a WebAuthn pass (e.g. 'phr')")
    acr_recovery: str = Field("mfa", description="acr after a recovery code pass")
    webauthn: WebAuthnConfig | None = Field(None, description="enable WebAuthn keys")
    page: str = Field(
        "/.tokengate/mfa/step-up",
        description="where browser navigations lacking MFA or a fresh login are sent"
        " (a same-origin path; default: the gateway's built-in page)",
    )

    @model_validator(mode="after")
    def _issuer(self) -> MfaConfig:
        if not self.issuer or ":" in self.issuer or not self.issuer.isprintable():
            raise ValueError("issuer must be non-empty printable text without ':'")
        return self

    @model_validator(mode="after")
    def _page(self) -> MfaConfig:
        page = self.page
        if not page.startswith("/") or page.startswith("//") or "\\" in page or "?" in page:
            raise ValueError("page must be a same-origin path like /mfa (no host, no query)")
        return self

    def totp_params(self) -> TotpParams:
        """The TOTP parameters new enrolments get."""
        return TotpParams(TotpAlgorithm(self.totp_algorithm), self.totp_digits, self.totp_period)
