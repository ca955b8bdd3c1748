"""The oidc config section: defaults, and every contradictory or unsafe value refused at load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxy.oidc import OidcConfig

BASE: dict[str, object] = {
    "issuer": "https://login.example.com/realms/main",
    "client_id": "tokengate",
    "client_secret": "s3cret",
}


def test_defaults() -> None:
    config = OidcConfig.model_validate(BASE)
    assert config.redirect_path == "/.tokengate/oidc/callback"
    assert config.scopes == ("openid", "profile", "email")
    assert config.id_token_algorithms == ("RS256", "PS256", "ES256", "EdDSA")
    assert config.claims.roles == ("roles",)
    assert config.claims.tenant is None
    assert config.token_endpoint_auth == "auto"
    assert config.leeway == 30
    assert config.jwks_refetch_interval == 30


def test_secret_is_never_shown() -> None:
    config = OidcConfig.model_validate(BASE)
    assert "s3cret" not in repr(config)
    assert "s3cret" not in str(config.model_dump())
    assert config.client_secret.get_secret_value() == "s3cret"


def test_durations_and_claim_paths_parse() -> None:
    config = OidcConfig.model_validate(
        {**BASE, "leeway": "10s", "login_timeout": "5m", "claims": {"roles": ["a", "b"]}}
    )
    assert config.leeway == 10
    assert config.login_timeout == 300
    assert config.claims.roles == ("a", "b")


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8080", "http://localhost:9000/op", "http://[::1]:1234"]
)
def test_plain_http_only_for_loopback(issuer: str) -> None:
    assert OidcConfig.model_validate({**BASE, "issuer": issuer}).issuer == issuer


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": "http://login.example.com"}, "must use https"),
        ({"issuer": "http://10.0.0.1"}, "must use https"),
        ({"issuer": "ftp://login.example.com"}, "must use https"),
        ({"issuer": "https://u:p@login.example.com"}, "without credentials"),
        ({"issuer": "https://login.example.com#x"}, "without credentials or fragment"),
        ({"issuer": "https://login.example.com?x=1"}, "cannot carry a query"),
        ({"issuer": "login.example.com"}, "absolute URL"),
        ({"client_id": ""}, "at least 1"),
        ({"client_secret": None}, "client_secret"),
        ({"redirect_path": "callback"}, "absolute path"),
        ({"redirect_path": "//evil.example/cb"}, "absolute path"),
        ({"redirect_path": "/cb?x=1"}, "absolute path"),
        ({"redirect_path": "/c b"}, "plain path"),
        ({"scopes": ["profile"]}, "must include openid"),
        ({"scopes": ["openid", "a b"]}, "plain tokens"),
        ({"id_token_algorithms": []}, "cannot be empty"),
        ({"id_token_algorithms": ["none"]}, "id_token_algorithms"),
        ({"id_token_algorithms": ["HS256"]}, "id_token_algorithms"),
        ({"leeway": 121}, "leeway"),
        ({"login_timeout": "5s"}, "login_timeout"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"jwks_cache_ttl": "10s"}, "cache ttls"),
        ({"jwks_refetch_interval": 0}, "jwks_refetch_interval"),
        ({"trusted_audiences": ["tokengate"]}, "client_id itself"),
        ({"claims": {"roles": []}}, "claim path"),
        ({"claims": {"roles": ["a", ""]}}, "claim path"),
        ({"token_endpoint_auth": "private_key_jwt"}, "token_endpoint_auth"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_invalid_config_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OidcConfig.model_validate({**BASE, **changes})
