"""The token request: client authentication choice and the provider's refusals."""

from __future__ import annotations

import pytest

from proxy.oidc import OidcProviderError
from proxy.oidc.errors import KNOWN_ERROR_CODES, OidcUnavailable
from proxy.oidc.exchange import choose_auth_method
from tests.proxy.oidc.conftest import login_query, make_rp
from tests.proxy.oidc.provider import Provider


@pytest.mark.parametrize(
    ("configured", "supported", "chosen"),
    [
        ("auto", {"client_secret_basic", "client_secret_post"}, "client_secret_basic"),
        ("auto", {"client_secret_post", "private_key_jwt"}, "client_secret_post"),
        ("client_secret_post", {"client_secret_basic", "client_secret_post"}, "client_secret_post"),
    ],
)
def test_auth_method_choice(configured: str, supported: set[str], chosen: str) -> None:
    assert choose_auth_method(configured, frozenset(supported)) == chosen


@pytest.mark.parametrize(
    ("configured", "supported"),
    [("auto", {"private_key_jwt", "none"}), ("client_secret_post", {"client_secret_basic"})],
)
def test_auth_method_unavailable(configured: str, supported: set[str]) -> None:
    with pytest.raises(OidcUnavailable):
        choose_auth_method(configured, frozenset(supported))


async def test_wrong_client_secret_refused_by_provider(provider: Provider) -> None:
    made = make_rp(provider, client_secret="wrong-secret-value-0123456789")
    try:
        query, cookie = await login_query(made)
        with pytest.raises(OidcProviderError) as info:
            await made.rp.callback(query=query, cookie=cookie)
        assert info.value.error == "invalid_client"
        assert "wrong-secret" not in str(info.value)
        assert "wrong-secret" not in info.value.reason
    finally:
        await made.rp.aclose()


def test_provider_error_codes_are_an_allowlist() -> None:
    assert OidcProviderError("callback", "access_denied").error == "access_denied"
    assert OidcProviderError("callback", "access_denied ").error == "unknown"
    assert OidcProviderError("callback", ["access_denied"]).error == "unknown"
    assert OidcProviderError("callback", "server_error").status == 503
    assert OidcProviderError("callback", "temporarily_unavailable").status == 503
    assert all(code.isidentifier() for code in KNOWN_ERROR_CODES)
