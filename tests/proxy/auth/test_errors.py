"""Auth errors: statuses, codes, and the RFC 9470 step-up challenge."""

from __future__ import annotations

import pytest

from proxy.auth.errors import AuthError, Forbidden, StepUpRequired
from tokengate.errors import GatewayError


def test_statuses_and_codes() -> None:
    assert (AuthError("auth: no session").status, AuthError("x").code) == (401, "unauthorized")
    assert (Forbidden("auth: role missing").status, Forbidden("x").code) == (403, "forbidden")
    step_up = StepUpRequired("auth: mfa required")
    assert (step_up.status, step_up.code) == (401, "insufficient_user_authentication")
    assert isinstance(step_up, AuthError)
    assert isinstance(Forbidden("x"), GatewayError)


def test_reason_defaults_to_the_message_and_stays_separate() -> None:
    assert AuthError("auth: x").reason == "auth: x"
    error = AuthError("auth: invalid token", reason="signature mismatch")
    assert str(error) == "auth: invalid token"
    assert error.reason == "signature mismatch"


@pytest.mark.parametrize(
    ("acr", "max_age", "challenge"),
    [
        ((), None, 'Bearer error="insufficient_user_authentication"'),
        (("mfa",), None, 'Bearer error="insufficient_user_authentication", acr_values="mfa"'),
        (
            ("phr", "phrh"),
            300,
            'Bearer error="insufficient_user_authentication", acr_values="phr phrh", max_age="300"',
        ),
        ((), 0, 'Bearer error="insufficient_user_authentication", max_age="0"'),
    ],
)
def test_rfc9470_challenge(acr: tuple[str, ...], max_age: int | None, challenge: str) -> None:
    error = StepUpRequired("auth: step-up", acr_values=acr, max_age=max_age)
    assert error.challenge() == challenge


@pytest.mark.parametrize("bad", ['a"b', "a b", "a\\b", "", "caf\u00e9"])
def test_acr_values_that_would_break_the_header_are_refused(bad: str) -> None:
    assert StepUpRequired("auth: step-up", acr_values=("urn:mace:incommon:iap:silver",))
    with pytest.raises(ValueError, match="acr values"):
        StepUpRequired("auth: step-up", acr_values=(bad,))
