"""Claims of tokengate's identity token, as the app reads them."""

from __future__ import annotations

import pytest
from demo_backend.identity import identity_account
from demo_backend.jws import JwsError
from demo_backend.store import Account

NOW = 1_800_000_000
AUD = "demo-app"


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": "tokengate",
        "aud": AUD,
        "sub": "alice",
        "sid": "s1",
        "roles": ["user", "support"],
        "iat": NOW,
        "exp": NOW + 60,
        "jti": "j",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "now"),
    [
        ({}, NOW),
        ({}, NOW + 64),
        ({}, NOW - 5),
        ({"aud": [AUD, "other"]}, NOW),
        ({"nbf": NOW + 5}, NOW),
        ({"roles": []}, NOW),
        ({"exp": NOW + 1}, NOW),
    ],
    ids=[
        "fresh",
        "within-skew-after-exp",
        "within-skew-before-iat",
        "aud-list",
        "nbf",
        "no-roles",
        "short",
    ],
)
def test_accepted(changes: dict[str, object], now: float) -> None:
    account = identity_account(_claims(**changes), audience=AUD, now=now)
    assert account is not None
    assert account.username == "alice"


@pytest.mark.parametrize(
    ("changes", "now"),
    [
        ({"aud": "billing-app"}, NOW),
        ({"aud": ["billing-app"]}, NOW),
        ({"aud": [AUD, 7]}, NOW),
        ({"aud": None}, NOW),
        ({}, NOW + 65),
        ({}, NOW - 6),
        ({"exp": NOW + 61}, NOW),
        ({"exp": NOW}, NOW - 1),
        ({"iat": None}, NOW),
        ({"exp": None}, NOW),
        ({"iat": float(NOW)}, NOW),
        ({"exp": True}, NOW),
        ({"nbf": NOW + 6}, NOW),
        ({"nbf": "soon"}, NOW),
        ({"sub": None}, NOW),
        ({"sub": 7}, NOW),
        ({"sub": "x" * 257}, NOW),
        ({"roles": None}, NOW),
        ({"roles": "support"}, NOW),
        ({"roles": ["user", 7]}, NOW),
        ({"roles": [""]}, NOW),
        ({"roles": ["r"] * 65}, NOW),
        ({"roles": ["r" * 65]}, NOW),
        ({"sub": "", "roles": ["support"]}, NOW),
    ],
    ids=lambda v: str(v)[:40],
)
def test_refused(changes: dict[str, object], now: float) -> None:
    with pytest.raises(JwsError):
        identity_account(_claims(**changes), audience=AUD, now=now)


def test_user_and_roles_become_the_account() -> None:
    assert identity_account(_claims(), audience=AUD, now=NOW) == Account(
        username="alice", roles=("user", "support")
    )


def test_anonymous_identity_is_no_user() -> None:
    claims = _claims(sub="", roles=[], sid="")
    assert identity_account(claims, audience=AUD, now=NOW) is None
