"""Checks that every request came through tokengate, and takes the user from it.

The signature is checked with the independent ``http_message_signatures``
package (RFC 9421), the identity token with ``cryptography``; nothing of
tokengate is used, so this also proves the two interoperate.

Rules (every failure is the same 401, its reason logged as a fixed category):
- ``GET /healthz`` is the one request that needs no proof.
- Exactly one signature, label ``tokengate``, Ed25519 (``alg`` absent or
  ``ed25519``), ``keyid`` a key of the gateway's JWKS (an unknown one
  triggers a rate-limited refetch), ``created`` at most 60 s old and at most
  5 s ahead, ``expires`` (if any) in the future.
- It covers ``@method @authority @path @query tokengate-identity`` and either
  ``content-digest`` under tag ``tokengate`` (the digest must match the body),
  or under tag ``tokengate-stream`` ``content-length``, whenever the request
  can carry a body (a Content-Length or Transfer-Encoding field is present).
- The signature carries a ``nonce``, accepted once: a request captured on its
  way to the app cannot be played again (kept in memory, so per process,
  while the signature could still pass the ``created`` window).
- The signed ``Tokengate-Identity`` token must verify (see
  :mod:`demo_backend.identity`); its ``sub`` and ``roles`` are then the
  request's user, instead of the app's own session cookie (tokengate's
  anonymous identity, on public routes, means no user: ``/api/*`` is 401).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    VerifyResult,
    algorithms,
)
from http_sf.compat import InnerList

from demo_backend.errors import ApiError
from demo_backend.identity import TYP, identity_account
from demo_backend.jwks import JwksCache
from demo_backend.jws import JwsError, parse_eddsa, verify_eddsa
from demo_backend.state import VOUCHED, Vouched
from demo_backend.validation import read_body

logger = logging.getLogger("demo_backend")

LABEL: Final = "tokengate"
TAG_BUFFERED: Final = "tokengate"
TAG_STREAM: Final = "tokengate-stream"
REQUIRED: Final = ("@method", "@authority", "@path", "@query", "tokengate-identity")
MAX_AGE: Final = 60
MAX_FUTURE: Final = 5
MAX_NONCES: Final = 100_000
_IDENTITY: Final = '"tokengate-identity"'
_DIGEST: Final = '"content-digest"'
_LENGTH: Final = '"content-length"'


class ProofRefused(Exception):
    """The request's proof is missing or wrong; the text is a fixed category for logs."""


@dataclass(frozen=True, slots=True)
class _Headers:
    """The request's field lines as sent (Latin-1 strings), in order."""

    lines: tuple[tuple[str, str], ...]

    def items(self) -> Iterable[tuple[str, str]]:
        return self.lines


@dataclass(frozen=True, slots=True)
class _SignedRequest:
    """The request as ``http_message_signatures`` reads it: method, URL as sent, fields."""

    method: str
    url: str
    headers: _Headers


class _JwksKeys(HTTPSignatureKeyResolver):
    """Resolves keyids from the keys held now and remembers one it did not know."""

    def __init__(self, jwks: JwksCache) -> None:
        self._jwks = jwks
        self.missing: str | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        key = self._jwks.get(key_id)
        if key is None:
            self.missing = key_id
        return key


class _Verifier(HTTPMessageVerifier):
    """The library's verifier with the time window on the app's clock, not the system's."""

    def __init__(self, keys: _JwksKeys, *, now: float) -> None:
        super().__init__(signature_algorithm=algorithms.ED25519, key_resolver=keys)
        self._now = now

    def validate_created_and_expires(self, sig_input: InnerList, max_age: object = None) -> None:
        created, expires = sig_input.params.get("created"), sig_input.params.get("expires")
        if type(created) is not int or not self._now - MAX_AGE <= created <= self._now + MAX_FUTURE:
            raise InvalidSignature("created missing or outside the window")
        if expires is not None and (type(expires) is not int or expires <= self._now):
            raise InvalidSignature("signature expired")


class SeenNonces:
    """Nonces of accepted signatures, each kept until its signature is too old anyway.

    Bounded: when full of live entries every new nonce counts as seen (fail
    closed) rather than forget one that could then be replayed.
    """

    def __init__(self, max_entries: int = MAX_NONCES) -> None:
        self._max = max_entries
        self._until: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, tuple[str, str]]] = []

    def first_use(self, keyid: str, nonce: str, *, until: float, now: float) -> bool:
        """True the first time ``(keyid, nonce)`` is seen; it is then kept until ``until``."""
        while self._expiries and self._expiries[0][0] <= now:
            _, old = heapq.heappop(self._expiries)
            del self._until[old]
        key = (keyid, nonce)
        if key in self._until or len(self._until) >= self._max:
            return False
        self._until[key] = until
        heapq.heappush(self._expiries, (until, key))
        return True


class RequestProof:
    """Verifies tokengate's signature and identity token on one request."""

    def __init__(
        self, *, jwks: JwksCache, identity_audience: str, now: Callable[[], float]
    ) -> None:
        self._jwks = jwks
        self._audience = identity_audience
        self._now = now
        self._seen = SeenNonces()

    async def caller(self, request: web.Request) -> Vouched:
        """Who tokengate vouches for; :class:`ProofRefused` if the proof fails."""
        now = self._now()
        message = _SignedRequest(
            method=request.method,
            url=f"{request.scheme}://{request.host}{request.raw_path}",
            headers=_Headers(
                tuple((k.decode("ascii"), v.decode("latin-1")) for k, v in request.raw_headers)
            ),
        )
        result = await self._signature(message, now)
        tag, nonce = result.parameters.get("tag"), result.parameters.get("nonce")
        if result.label != LABEL or tag not in (TAG_BUFFERED, TAG_STREAM):
            raise ProofRefused("label or tag")
        if not isinstance(nonce, str) or not nonce:
            raise ProofRefused("no nonce")
        if tag == TAG_BUFFERED:
            if _DIGEST not in result.covered_components:
                raise ProofRefused("digest not covered")
            try:
                _Verifier(_JwksKeys(self._jwks), now=now).verify_body(
                    message, [result], await read_body(request)
                )
            except HTTPMessageSignaturesException as e:
                raise ProofRefused("digest") from e
        elif _can_have_body(request) and _LENGTH not in result.covered_components:
            raise ProofRefused("length not covered")
        vouched = await self._identity(result.covered_components[_IDENTITY], now)
        # Recorded only now, so that nothing unverified can use up a nonce.
        until = int(result.parameters["created"]) + MAX_AGE + 1
        if not self._seen.first_use(str(result.parameters["keyid"]), nonce, until=until, now=now):
            raise ProofRefused("replay")
        return vouched

    async def _signature(self, message: _SignedRequest, now: float) -> VerifyResult:
        keys = _JwksKeys(self._jwks)
        try:
            return _verify(message, keys, now)
        except HTTPMessageSignaturesException as e:
            if not keys.missing or await self._jwks.lookup(keys.missing) is None:
                raise ProofRefused("signature") from e
        # The gateway rotated its key and the refetched JWKS has it: verify once more.
        try:
            return _verify(message, _JwksKeys(self._jwks), now)
        except HTTPMessageSignaturesException as e:
            raise ProofRefused("signature") from e

    async def _identity(self, token: str, now: float) -> Vouched:
        try:
            jws = parse_eddsa(token, typ=TYP)
            key = await self._jwks.lookup(jws.kid)
            if key is None:
                raise JwsError("identity: unknown kid")
            payload = verify_eddsa(jws, key)
            return Vouched(identity_account(payload, audience=self._audience, now=now))
        except JwsError as e:
            raise ProofRefused("identity") from e


def _verify(message: _SignedRequest, keys: _JwksKeys, now: float) -> VerifyResult:
    # No tag or label given: the library then insists on exactly one signature.
    (result,) = _Verifier(keys, now=now).verify(message, max_age=None, require_components=REQUIRED)
    return result


def _can_have_body(request: web.Request) -> bool:
    return "Content-Length" in request.headers or "Transfer-Encoding" in request.headers


PROOF = web.AppKey("demo_backend_proof", RequestProof)


def request_proof_middleware() -> Middleware:
    """Middleware refusing requests without a valid tokengate proof (401 JSON).

    The checker is ``app[PROOF]``, set at start-up once the JWKS is fetched.
    """

    @web.middleware
    async def verify_request_proof(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "GET" and request.raw_path == "/healthz":
            return await handler(request)
        try:
            request[VOUCHED] = await request.app[PROOF].caller(request)
        except ProofRefused as e:
            logger.warning(
                "demo_backend: request proof refused (%s) on %s %s", e, request.method, request.path
            )
            raise ApiError(401, "invalid_proof", "request is not signed by tokengate") from e
        return await handler(request)

    return verify_request_proof
