"""OpenID Provider discovery: ``/.well-known/openid-configuration``, checked and cached.

Rules (OIDC Discovery 1.0 section 4.3, RFC 8414 section 3.3):

- The document's ``issuer`` must equal the configured issuer exactly (no
  trailing-slash or case folding), or the whole document is refused: a
  provider cannot speak for another issuer (mix-up defence).
- The endpoints the flow uses must be https (http only on a loopback host),
  the code flow must be supported, and if the provider lists PKCE methods,
  S256 must be one of them.
- The document is cached for ``ttl`` seconds; concurrent callers share one
  fetch. A failed fetch raises :class:`OidcUnavailable` and keeps nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxy.oidc.config import check_provider_url
from proxy.oidc.errors import OidcUnavailable
from proxy.oidc.http import ProviderHttp

WELL_KNOWN = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a provider's discovery document the relying party relies on."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_signing_alg_values_supported: frozenset[str]
    token_endpoint_auth_methods_supported: frozenset[str]
    code_challenge_methods_supported: frozenset[str] | None
    authorization_response_iss_parameter_supported: bool
    end_session_endpoint: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, object], *, issuer: str) -> ProviderMetadata:
        """Check a discovery document against the configured ``issuer``."""
        if doc.get("issuer") != issuer:
            raise OidcUnavailable("oidc: discovery issuer does not match the configured issuer")
        if "code" not in _required_strings(doc, "response_types_supported"):
            raise OidcUnavailable("oidc: provider does not support the code flow")
        pkce = _strings(doc, "code_challenge_methods_supported")
        if pkce is not None and "S256" not in pkce:
            raise OidcUnavailable("oidc: provider does not support PKCE S256")
        end_session = doc.get("end_session_endpoint")
        return cls(
            issuer=issuer,
            authorization_endpoint=_endpoint(doc, "authorization_endpoint"),
            token_endpoint=_endpoint(doc, "token_endpoint"),
            jwks_uri=_endpoint(doc, "jwks_uri"),
            id_token_signing_alg_values_supported=_required_strings(
                doc, "id_token_signing_alg_values_supported"
            ),
            token_endpoint_auth_methods_supported=_strings(
                doc, "token_endpoint_auth_methods_supported"
            )
            # The registered default when the member is absent (OIDC Discovery 3).
            or frozenset({"client_secret_basic"}),
            code_challenge_methods_supported=pkce,
            authorization_response_iss_parameter_supported=doc.get(
                "authorization_response_iss_parameter_supported"
            )
            is True,
            end_session_endpoint=(
                _endpoint(doc, "end_session_endpoint") if end_session is not None else None
            ),
        )


def discovery_url(issuer: str) -> str:
    """The well-known URL of ``issuer`` (OIDC Discovery 4: appended after any path)."""
    return issuer.rstrip("/") + WELL_KNOWN


class Discovery:
    """The provider's metadata, fetched on first use and refreshed after ``ttl`` seconds."""

    def __init__(
        self, issuer: str, http: ProviderHttp, *, ttl: float, clock: Callable[[], float]
    ) -> None:
        self._issuer = issuer
        self._http = http
        self._ttl = ttl
        self._clock = clock
        self._cached: ProviderMetadata | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        """The cached metadata, refetched when older than ``ttl``."""
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._fresh()
            if cached is None:
                doc = await self._http.get_json(discovery_url(self._issuer), what="discovery")
                cached = ProviderMetadata.from_document(doc, issuer=self._issuer)
                self._cached, self._fetched_at = cached, self._clock()
            return cached

    def _fresh(self) -> ProviderMetadata | None:
        if self._cached is not None and self._clock() - self._fetched_at < self._ttl:
            return self._cached
        return None


def _endpoint(doc: Mapping[str, object], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or len(value) > 2048:
        raise OidcUnavailable(f"oidc: discovery lacks {name}")
    try:
        return check_provider_url(value, what=name)
    except ValueError as e:
        raise OidcUnavailable(f"oidc: discovery {name} is not an https URL") from e


def _strings(doc: Mapping[str, object], name: str) -> frozenset[str] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OidcUnavailable(f"oidc: discovery {name} is not a list of strings")
    return frozenset(value)


def _required_strings(doc: Mapping[str, object], name: str) -> frozenset[str]:
    value = _strings(doc, name)
    if value is None:
        raise OidcUnavailable(f"oidc: discovery lacks {name}")
    return value
