"""Bearer parsing: exactly one header, the Bearer scheme, a key of the admin shape, a known key."""

from __future__ import annotations

import pytest

from proxy.adminapi.auth import authenticate, authorize
from proxy.adminapi.errors import AuthFailed, RoleTooWeak
from proxy.adminapi.keys import ApiKey, KeyTable, Role, key_digest, new_api_key

KEY = new_api_key()
TABLE = KeyTable([ApiKey("alice", Role.OPERATOR, key_digest(KEY))])


@pytest.mark.parametrize(
    "headers",
    [[f"Bearer {KEY}"], [f"bearer {KEY}"], [f"BEARER {KEY}"], [f"  Bearer {KEY}  "],
     [f"Bearer  {KEY}"]],
)  # fmt: skip
def test_known_key_authenticates(headers: list[str]) -> None:
    assert authenticate(headers, TABLE).name == "alice"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "missing"),
        ([f"Bearer {KEY}", f"Bearer {KEY}"], "malformed"),
        ([f"Basic {KEY}"], "malformed"),
        ([KEY], "malformed"),
        (["Bearer"], "malformed"),
        (["Bearer "], "malformed"),
        ([f"Bearer {KEY} extra"], "malformed"),
        ([f"Bearer {KEY.upper()}"], "malformed"),
        ([f"Bearer {KEY[4:]}"], "malformed"),
        ([f"Bearer {key_digest(KEY)}"], "malformed"),  # the stored digest is not a key
        ([f"Bearer {new_api_key()}"], "unknown_key"),
    ],
)
def test_refused(headers: list[str], reason: str) -> None:
    with pytest.raises(AuthFailed) as info:
        authenticate(headers, TABLE)
    assert info.value.reason == reason
    assert info.value.status == 401
    assert KEY not in str(info.value)


def test_authorize_allows_the_role_and_refuses_a_stronger_one() -> None:
    key = authenticate([f"Bearer {KEY}"], TABLE)
    authorize(key, Role.OPERATOR)
    with pytest.raises(RoleTooWeak) as info:
        authorize(key, Role.ADMIN)
    assert info.value.status == 403
    assert "admin role" in str(info.value)
