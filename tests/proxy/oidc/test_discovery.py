"""Discovery: document checks, exact issuer, caching, fail-closed transport."""

from __future__ import annotations

import pytest

from proxy.oidc import OidcUnavailable
from proxy.oidc.discovery import Discovery, ProviderMetadata, discovery_url
from proxy.oidc.http import ProviderHttp
from tests.proxy.oidc.docserver import DocServer
from tests.proxy.oidc.provider import Provider

ISSUER = "https://op.example"


def doc(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/auth",
        "token_endpoint": ISSUER + "/token",
        "jwks_uri": ISSUER + "/jwks",
        "response_types_supported": ["code", "id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_minimal_document() -> None:
    meta = ProviderMetadata.from_document(doc(), issuer=ISSUER)
    assert meta.token_endpoint == ISSUER + "/token"
    assert meta.token_endpoint_auth_methods_supported == {"client_secret_basic"}
    assert meta.code_challenge_methods_supported is None
    assert not meta.authorization_response_iss_parameter_supported
    assert meta.end_session_endpoint is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"issuer": ISSUER + "/"}, "issuer does not match"),
        ({"issuer": "https://OP.example"}, "issuer does not match"),
        ({"issuer": None}, "issuer does not match"),
        ({"token_endpoint": "http://op.example/token"}, "token_endpoint is not an https URL"),
        ({"jwks_uri": "https://user:pw@op.example/jwks"}, "jwks_uri is not an https URL"),
        ({"jwks_uri": None}, "lacks jwks_uri"),
        ({"authorization_endpoint": 5}, "lacks authorization_endpoint"),
        ({"response_types_supported": ["id_token"]}, "code flow"),
        ({"response_types_supported": "code"}, "not a list"),
        ({"code_challenge_methods_supported": ["plain"]}, "PKCE S256"),
        ({"id_token_signing_alg_values_supported": None}, "lacks id_token_signing"),
        ({"end_session_endpoint": "ftp://op.example/x"}, "end_session_endpoint"),
    ],
)
def test_bad_documents_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(OidcUnavailable, match=message) as info:
        ProviderMetadata.from_document(doc(**changes), issuer=ISSUER)
    assert info.value.status == 503


def test_well_known_url_follows_the_issuer_path() -> None:
    assert (
        discovery_url("https://op.example") == "https://op.example/.well-known/openid-configuration"
    )
    assert (
        discovery_url("https://op.example/realms/a/")
        == "https://op.example/realms/a/.well-known/openid-configuration"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_discovery_is_cached_until_ttl(docserver: DocServer) -> None:
    docserver.docs["/.well-known/openid-configuration"] = docserver.discovery()
    clock = Clock()
    http = ProviderHttp(connect_timeout=2, request_timeout=5)
    discovery = Discovery(docserver.url, http, ttl=60, clock=clock)
    try:
        first = await discovery.metadata()
        clock.now = 59
        assert await discovery.metadata() is first
        assert docserver.hits["/.well-known/openid-configuration"] == 1
        clock.now = 60
        await discovery.metadata()
        assert docserver.hits["/.well-known/openid-configuration"] == 2
        # A refetch that now fails fails closed: no stale document is served.
        docserver.status["/.well-known/openid-configuration"] = 503
        clock.now = 200
        with pytest.raises(OidcUnavailable):
            await discovery.metadata()
    finally:
        await http.aclose()


async def test_discovery_redirect_not_followed(docserver: DocServer) -> None:
    docserver.status["/.well-known/openid-configuration"] = 302
    http = ProviderHttp(connect_timeout=2, request_timeout=5)
    try:
        with pytest.raises(OidcUnavailable, match="answered 302"):
            await Discovery(docserver.url, http, ttl=60, clock=Clock()).metadata()
        assert docserver.hits["/elsewhere"] == 0
    finally:
        await http.aclose()


async def test_real_provider_document(provider: Provider) -> None:
    http = ProviderHttp(connect_timeout=2, request_timeout=5)
    try:
        meta = await Discovery(provider.issuer, http, ttl=60, clock=Clock()).metadata()
    finally:
        await http.aclose()
    assert meta.issuer == provider.issuer
    assert meta.code_challenge_methods_supported == frozenset({"S256"})
    assert meta.authorization_response_iss_parameter_supported
    assert {
        "client_secret_basic",
        "client_secret_post",
    } <= meta.token_endpoint_auth_methods_supported
    assert "RS256" in meta.id_token_signing_alg_values_supported
