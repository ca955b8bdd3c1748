"""The token request: an authorization code and its PKCE verifier for an ID token.

RFC 6749 section 4.1.3 with RFC 7636 section 4.5. The client authenticates
with ``client_secret_basic`` (id and secret form-encoded before base64, RFC
6749 section 2.3.1) or ``client_secret_post``; ``auto`` takes basic when the
provider announces it (the registered default) and post otherwise. A 4xx with
an OAuth ``error`` raises :class:`OidcProviderError` carrying only a
registered error code; a 5xx or a non-JSON answer raises
:class:`OidcUnavailable` (503); a 200 without an ID token (the provider did
not treat the request as OpenID) raises :class:`OidcError`. No message contains the code,
the verifier, the secret or the provider's ``error_description``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote_plus

from pydantic import SecretStr

from proxy.oidc.discovery import ProviderMetadata
from proxy.oidc.errors import OidcError, OidcProviderError, OidcUnavailable
from proxy.oidc.http import ProviderHttp

BASIC: Final = "client_secret_basic"
POST: Final = "client_secret_post"


@dataclass(frozen=True)
class TokenResponse:
    """The tokens a successful exchange returned (never logged: repr hides them)."""

    id_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)


def choose_auth_method(configured: str, supported: frozenset[str]) -> str:
    """The client authentication method to use at this provider."""
    if configured != "auto":
        if configured not in supported:
            raise OidcUnavailable(f"oidc: provider does not support {configured}")
        return configured
    for method in (BASIC, POST):
        if method in supported:
            return method
    raise OidcUnavailable("oidc: provider supports neither client_secret_basic nor _post")


async def exchange_code(
    http: ProviderHttp,
    metadata: ProviderMetadata,
    *,
    client_id: str,
    client_secret: SecretStr,
    auth_method: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> TokenResponse:
    """Redeem ``code`` at the token endpoint; see the module docstring for the errors."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers: dict[str, str] = {}
    if auth_method == BASIC:
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret.get_secret_value())}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    elif auth_method == POST:
        form["client_id"] = client_id
        form["client_secret"] = client_secret.get_secret_value()
    else:
        raise ValueError("oidc: unknown token endpoint auth method")
    status, body = await http.post_form(
        metadata.token_endpoint, form, headers=headers, what="token endpoint"
    )
    if 400 <= status < 500 and body is not None and "error" in body:
        raise OidcProviderError("token endpoint", body.get("error"))
    if status != 200 or body is None:
        raise OidcUnavailable(
            f"oidc: token endpoint answered {status}", reason=f"token endpoint status {status}"
        )
    return _tokens(body)


def _tokens(body: dict[str, object]) -> TokenResponse:
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise OidcError("oidc: token response has no id token")
    access_token = body.get("access_token")
    if access_token is None:
        return TokenResponse(id_token=id_token)
    if not isinstance(access_token, str) or not isinstance(body.get("token_type"), str):
        raise OidcError("oidc: token response is malformed")
    return TokenResponse(id_token=id_token, access_token=access_token)
