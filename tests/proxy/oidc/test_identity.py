"""Mapping ID-token claims to OidcIdentity."""

from __future__ import annotations

import pytest

from proxy.oidc import IdTokenError, OidcClaimMapping, OidcIdentity
from proxy.oidc.identity import map_claims

BASE: dict[str, object] = {
    "sub": "u1",
    "roles": ["admin", "ops"],
    "amr": ["pwd", "mfa"],
    "acr": "loa2",
    "auth_time": 1700000000,
}


def test_standard_claims() -> None:
    assert map_claims(BASE, OidcClaimMapping()) == OidcIdentity(
        sub="u1", roles=("admin", "ops"), amr=("pwd", "mfa"), acr="loa2", auth_time=1700000000
    )


def test_minimal_token() -> None:
    assert map_claims({"sub": "u1"}, OidcClaimMapping()) == OidcIdentity(sub="u1")


@pytest.mark.parametrize(
    ("mapping", "claims", "roles", "tenant"),
    [
        ({"roles": ["realm_access", "roles"]}, {"realm_access": {"roles": ["a"]}}, ("a",), None),
        ({"roles": "groups"}, {"groups": "a b  c"}, ("a", "b", "c"), None),
        ({"roles": "roles"}, {"roles": ["a", "a", "b"]}, ("a", "b"), None),
        (
            {"roles": "https://app.example/roles"},
            {"https://app.example/roles": ["x"]},
            ("x",),
            None,
        ),
        ({"roles": ["realm_access", "roles"]}, {"realm_access": "nope"}, (), None),
        ({"tenant": "org"}, {"org": "acme"}, (), "acme"),
        ({"tenant": ["org", "id"]}, {"org": {"id": "acme"}}, (), "acme"),
        ({"tenant": "org"}, {}, (), None),
        ({}, {"tenant": "ignored-without-mapping"}, (), None),
    ],
)
def test_configured_paths(
    mapping: dict[str, object],
    claims: dict[str, object],
    roles: tuple[str, ...],
    tenant: str | None,
) -> None:
    identity = map_claims({"sub": "u1", **claims}, OidcClaimMapping.model_validate(mapping))
    assert identity.roles == roles
    assert identity.tenant == tenant


@pytest.mark.parametrize(
    ("mapping", "claims"),
    [
        ({}, {"roles": 5}),
        ({}, {"roles": [1, 2]}),
        ({}, {"roles": [""]}),
        ({}, {"roles": ["x" * 300]}),
        ({}, {"roles": ["r"] * 300}),
        ({"tenant": "org"}, {"org": ["acme"]}),
        ({"tenant": "org"}, {"org": ""}),
        ({}, {"amr": "pwd"}),
        ({}, {"acr": 2}),
        ({}, {"auth_time": "now"}),
        ({}, {"sub": None}),
    ],
)
def test_wrong_shapes_fail_closed(mapping: dict[str, object], claims: dict[str, object]) -> None:
    with pytest.raises(IdTokenError):
        map_claims({**BASE, **claims}, OidcClaimMapping.model_validate(mapping))
