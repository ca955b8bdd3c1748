"""The authorization code flow of the relying party: start a login, finish it at the callback.

Rules:

- ``start`` draws state (256 bits), nonce (256 bits) and a PKCE verifier (256
  bits, S256 challenge) from :func:`kms_client.rng.random_bytes` and seals
  them, with the return path, redirect URI, issuer and creation time, into
  one cookie value (:class:`~proxy.oidc.sealer.FlowSealer`). Nothing is kept
  server-side until the callback.
- The return path is a same-origin relative path (``/...``, never ``//``, a
  backslash, a scheme or control characters); anything else becomes ``/``.
- ``callback`` opens the cookie (tamper and expiry refused), compares the
  ``state`` parameter in constant time, checks RFC 9207 ``iss`` (required
  when the provider announces it), then consumes the state through a
  :class:`~proxy.auth.claims.ReplayGuard` so a replayed cookie and callback
  URL fail even before the provider would refuse the used code. Only then is
  ``error=`` reported (as a registered code, never the provider's text) or the
  code exchanged with the verifier, and the ID token verified against the
  sealed nonce.
- Callback parameters arrive as the raw query string: a repeated parameter
  is refused (RFC 6749 section 3.1).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from kms_client.rng import random_bytes
from proxy.auth.claims import ReplayGuard
from proxy.auth.jose import b64url_encode
from proxy.oidc.config import OidcConfig
from proxy.oidc.discovery import Discovery, ProviderMetadata
from proxy.oidc.errors import OidcError, OidcProviderError
from proxy.oidc.exchange import choose_auth_method, exchange_code
from proxy.oidc.flow_state import FlowState, pkce_challenge, safe_return_path
from proxy.oidc.http import ProviderHttp
from proxy.oidc.id_token import IdTokenExpectations, allowed_algorithms, verify_id_token
from proxy.oidc.identity import OidcIdentity, map_claims
from proxy.oidc.jwks import JwksCache
from proxy.oidc.sealer import FlowSealer, FlowSealError

SECRET_BYTES: Final = 32
REPLAY_NAMESPACE: Final = "oidc-flow"
MAX_QUERY: Final = 8192
MAX_CODE: Final = 2048
PROMPTS: Final = frozenset({"none", "login", "consent", "select_account"})
_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")  # RFC 6749 NQCHAR, bounded
_ORIGIN: Final = re.compile(
    r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:\d{1,5})?"
)


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and the cookie value to set on that redirect."""

    authorization_url: str
    cookie_value: str = field(repr=False)
    cookie_max_age: int


@dataclass(frozen=True)
class LoginResult:
    """A finished login: who, and the same-origin path to return to."""

    identity: OidcIdentity
    return_to: str


class OidcRelyingParty:
    """One configured provider; built once per worker, shared by all requests."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        sealer: FlowSealer,
        replay: ReplayGuard,
        clock: Callable[[], float] = time.time,
        http: ProviderHttp | None = None,
    ) -> None:
        self.config = config
        self._sealer = sealer
        self._replay = replay
        self._clock = clock
        self._http = http or ProviderHttp(
            connect_timeout=config.connect_timeout,
            request_timeout=config.request_timeout,
            ca_file=config.ca_file,
        )
        self.discovery = Discovery(
            config.issuer, self._http, ttl=config.discovery_cache_ttl, clock=clock
        )
        self.jwks = JwksCache(
            self.discovery,
            self._http,
            ttl=config.jwks_cache_ttl,
            refetch_interval=config.jwks_refetch_interval,
            clock=clock,
        )

    async def aclose(self) -> None:
        """Close the provider connections."""
        await self._http.aclose()

    def redirect_uri(self, origin: str) -> str:
        """The callback URL on the gateway's public ``origin`` (``https://host[:port]``)."""
        if not _ORIGIN.fullmatch(origin):
            raise ValueError("oidc: origin must be scheme://host[:port]")
        return origin + self.config.redirect_path

    async def start(
        self,
        *,
        origin: str,
        return_to: str | None = None,
        max_age: int | None = None,
        acr_values: Sequence[str] = (),
        prompt: str | None = None,
    ) -> LoginStart:
        """Begin a login: the authorization URL and the sealed flow cookie value."""
        if max_age is not None and not 0 <= max_age <= 366 * 86400:
            raise ValueError("oidc: max_age out of range")
        if prompt is not None and prompt not in PROMPTS:
            raise ValueError("oidc: unknown prompt")
        if not all(_TOKEN.fullmatch(v) for v in acr_values):
            raise ValueError("oidc: acr_values must be plain tokens")
        metadata = await self.discovery.metadata()
        flow = FlowState(
            state=_secret(),
            nonce=_secret(),
            code_verifier=_secret(),
            return_to=safe_return_path(return_to),
            redirect_uri=self.redirect_uri(origin),
            issuer=self.config.issuer,
            created=self._clock(),
            max_age=max_age,
        )
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": flow.redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": pkce_challenge(flow.code_verifier),
            "code_challenge_method": "S256",
        }
        if max_age is not None:
            params["max_age"] = str(max_age)
        if acr_values:
            params["acr_values"] = " ".join(acr_values)
        if prompt is not None:
            params["prompt"] = prompt
        return LoginStart(
            authorization_url=_with_query(metadata.authorization_endpoint, params),
            cookie_value=self._sealer.seal(flow.to_bytes()),
            cookie_max_age=int(self.config.login_timeout),
        )

    async def callback(self, *, query: str, cookie: str | None) -> LoginResult:
        """Finish a login from the callback's raw query string and the flow cookie value."""
        params = _parse_query(query)
        flow = self._open(cookie)
        metadata = await self.discovery.metadata()
        self._check_response(params, flow, metadata)
        digest = hashlib.sha256(flow.state.encode("ascii")).hexdigest()
        ttl = self.config.login_timeout + self.config.leeway
        if not await self._replay.first_use(REPLAY_NAMESPACE, digest, ttl):
            raise OidcError("oidc: login state already used", code="oidc_invalid_flow")
        if "error" in params:
            raise OidcProviderError("callback", params["error"])
        code = params.get("code", "")
        if not 0 < len(code) <= MAX_CODE or not code.isascii() or not code.isprintable():
            raise OidcError("oidc: callback has no usable code")
        tokens = await exchange_code(
            self._http,
            metadata,
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            auth_method=choose_auth_method(
                self.config.token_endpoint_auth, metadata.token_endpoint_auth_methods_supported
            ),
            code=code,
            redirect_uri=flow.redirect_uri,
            code_verifier=flow.code_verifier,
        )
        claims = await verify_id_token(
            tokens.id_token,
            keys=self.jwks,
            expect=self._expectations(flow, metadata),
            access_token=tokens.access_token,
        )
        return LoginResult(map_claims(claims, self.config.claims), flow.return_to)

    def _open(self, cookie: str | None) -> FlowState:
        if not cookie:
            raise FlowSealError("flow: no cookie")
        flow = FlowState.from_bytes(self._sealer.open(cookie))
        now = self._clock()
        if not flow.created - self.config.leeway <= now < flow.created + self.config.login_timeout:
            raise FlowSealError("flow: expired")
        if flow.issuer != self.config.issuer:
            raise FlowSealError("flow: started for another issuer")
        return flow

    def _check_response(
        self, params: dict[str, str], flow: FlowState, metadata: ProviderMetadata
    ) -> None:
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode("utf-8"), flow.state.encode("ascii")):
            raise OidcError("oidc: state mismatch", code="oidc_invalid_state")
        iss = params.get("iss")
        if iss is None and metadata.authorization_response_iss_parameter_supported:
            raise OidcError("oidc: callback lacks iss", code="oidc_invalid_state")
        if iss is not None and iss != self.config.issuer:
            raise OidcError("oidc: callback iss is not the issuer", code="oidc_invalid_state")

    def _expectations(self, flow: FlowState, metadata: ProviderMetadata) -> IdTokenExpectations:
        return IdTokenExpectations(
            issuer=self.config.issuer,
            client_id=self.config.client_id,
            nonce=flow.nonce,
            algorithms=allowed_algorithms(
                self.config.id_token_algorithms, metadata.id_token_signing_alg_values_supported
            ),
            now=self._clock(),
            leeway=self.config.leeway,
            trusted_audiences=frozenset(self.config.trusted_audiences),
            max_age=flow.max_age,
        )


def _secret() -> str:
    return b64url_encode(random_bytes(SECRET_BYTES))


def _parse_query(query: str) -> dict[str, str]:
    if len(query) > MAX_QUERY:
        raise OidcError("oidc: callback query too long")
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, max_num_fields=32)
    except ValueError as e:
        raise OidcError("oidc: callback query malformed") from e
    for name, value in pairs:
        if name in params:
            raise OidcError("oidc: callback repeats a parameter")
        params[name] = value
    return params


def _with_query(endpoint: str, params: dict[str, str]) -> str:
    parts = urlsplit(endpoint)
    query = urlencode(params, quote_via=quote)
    merged = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, merged, ""))
