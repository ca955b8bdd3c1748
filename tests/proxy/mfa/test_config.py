"""The ``mfa:`` config section: defaults, limits, and WebAuthn party validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.auth.totp import TotpAlgorithm, TotpParams
from proxy.mfa.config import MfaConfig


def test_defaults() -> None:
    config = MfaConfig()
    assert config.totp_params() == TotpParams(TotpAlgorithm.SHA1, 6, 30)
    assert (config.max_failures, config.failure_window, config.lockout) == (5, 900.0, 900.0)
    assert (config.recovery_codes, config.enrolment_ttl, config.challenge_ttl) == (10, 600.0, 300.0)
    assert (config.acr_otp, config.acr_hwk, config.acr_recovery) == ("mfa", "mfa", "mfa")
    assert config.store is None
    assert config.webauthn is None


def test_durations_and_webauthn() -> None:
    config = MfaConfig.model_validate(
        {
            "totp_algorithm": "SHA256",
            "totp_digits": 8,
            "lockout": "30m",
            "failure_window": "1h",
            "webauthn": {"rp_id": "example.com", "origins": ["https://app.example.com"]},
        }
    )
    assert config.totp_params() == TotpParams(TotpAlgorithm.SHA256, 8, 30)
    assert (config.lockout, config.failure_window) == (1800.0, 3600.0)
    assert config.webauthn is not None
    rp = config.webauthn.relying_party()
    assert (rp.rp_id, rp.name, rp.origins) == (
        "example.com",
        "tokengate",
        ("https://app.example.com",),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"totp_digits": 5}, "totp_digits"),
        ({"totp_algorithm": "MD5"}, "totp_algorithm"),
        ({"totp_period": 10}, "totp_period"),
        ({"max_failures": 0}, "max_failures"),
        ({"lockout": "10s"}, "lockout"),
        ({"recovery_codes": 33}, "recovery_codes"),
        ({"issuer": "a:b"}, "without ':'"),
        (
            {"webauthn": {"rp_id": "example.com", "origins": ["https://evil.net"]}},
            "not within rp_id",
        ),
        (
            {"webauthn": {"rp_id": "example.com", "origins": ["http://example.com"]}},
            "must be https",
        ),
        ({"webauthn": {"rp_id": "example.com", "origins": []}}, "at least one origin"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MfaConfig.model_validate(data)
