"""DPoP proofs (RFC 9449): the client proves it holds the key its session is bound to.

Rules (RFC 9449 section 4.3):

- ``typ`` is ``dpop+jwt``; ``alg`` is in the allowed set (EdDSA, ES256) and
  matches the embedded ``jwk``, which must be public-only; the signature is
  by that key, and its RFC 7638 thumbprint (``jkt``) is returned so the caller
  compares it with the session's ``cnf.jkt``.
- ``htm`` equals the request method; ``htu`` equals the request URL without
  query and fragment, both normalised (scheme and host lowercase, default port
  dropped, empty path as ``/``, percent-encoding case and unreserved escapes).
- ``iat`` lies within ``max_age`` seconds in the past and ``max_future`` in the
  future; ``jti`` is single-use per key through the replay guard, checked last.
- With an access token, ``ath`` must be base64url(SHA-256(token)).
- Server nonces come from :class:`DPoPNonces`: stateless HMAC tags over an
  issue time, under rotating secrets. A missing or stale nonce when one is
  required raises :class:`DPoPNonceRequired` (answer ``use_dpop_nonce`` with a
  fresh ``DPoP-Nonce``); a nonce that is present is always checked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from proxy.auth.claims import ReplayGuard, numeric_date, string
from proxy.auth.errors import AuthError
from proxy.auth.jose import (
    EDDSA,
    ES256,
    JwsError,
    b64url_decode,
    b64url_encode,
    jwk_thumbprint,
    verify,
)

TYP: Final = "dpop+jwt"
REPLAY_NAMESPACE: Final = "dpop-jti"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PCT: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_NONCE_VERSION: Final = 1
_NONCE_CONTEXT: Final = b"tokengate dpop nonce\x00"


class DPoPError(AuthError):
    """A DPoP proof is missing or invalid (RFC 9449 ``invalid_dpop_proof``)."""

    code = "invalid_dpop_proof"

    def __init__(self, reason: str) -> None:
        super().__init__("dpop: invalid proof", reason=reason)


class DPoPNonceRequired(DPoPError):
    """The proof needs a (fresh) server nonce: answer ``use_dpop_nonce`` with a new one."""

    code = "use_dpop_nonce"


@dataclass(frozen=True)
class DPoPProof:
    """A verified proof: the key thumbprint and the replay-relevant claims."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None


class DPoPNonces:
    """Stateless server nonces: ``v1 | issue time | HMAC-SHA256(secret, ...)[:16]``.

    ``secret_provider`` returns the current secrets, newest first (each at least
    32 bytes): new nonces use the first, any of them verifies, so a rotation
    keeps recently issued nonces valid. ``now`` is the clock.
    """

    def __init__(
        self,
        secret_provider: Callable[[], Sequence[bytes]],
        now: Callable[[], float],
        *,
        lifetime: float = 300.0,
        max_future: float = 5.0,
    ) -> None:
        if not 0 < lifetime <= 3600:
            raise ValueError("dpop: nonce lifetime must be 1..3600 seconds")
        self._secrets = secret_provider
        self._now = now
        self._lifetime = lifetime
        self._max_future = max_future

    def issue(self) -> str:
        """A fresh nonce for the ``DPoP-Nonce`` header."""
        secrets = self._checked_secrets()
        body = struct.pack(">BQ", _NONCE_VERSION, int(self._now()))
        return b64url_encode(body + _tag(secrets[0], body))

    def check(self, nonce: str) -> bool:
        """True when ``nonce`` was issued here within the lifetime."""
        try:
            raw = b64url_decode(nonce) if len(nonce) < 64 else b""
        except JwsError:
            return False
        if len(raw) != 25:
            return False
        body, tag = raw[:9], raw[9:]
        version, issued = struct.unpack(">BQ", body)
        now = self._now()
        if (
            version != _NONCE_VERSION
            or not now - self._lifetime <= issued <= now + self._max_future
        ):
            return False
        return any(hmac.compare_digest(_tag(s, body), tag) for s in self._checked_secrets())

    def _checked_secrets(self) -> Sequence[bytes]:
        secrets = self._secrets()
        if not secrets or any(len(s) < 32 for s in secrets):
            raise ValueError("dpop: nonce secrets must be non-empty and at least 32 bytes")
        return secrets


def _tag(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _NONCE_CONTEXT + body, hashlib.sha256).digest()[:16]


class DPoPVerifier:
    """Verifies DPoP proofs for one gateway."""

    def __init__(
        self,
        *,
        replay: ReplayGuard,
        algorithms: frozenset[str] = frozenset({EDDSA, ES256}),
        nonces: DPoPNonces | None = None,
        max_age: float = 60.0,
        max_future: float = 5.0,
    ) -> None:
        if not algorithms or not algorithms <= {EDDSA, ES256}:
            raise ValueError("dpop: algorithms must be EdDSA and/or ES256")
        if not 0 < max_age <= 300 or not 0 <= max_future <= 60:
            raise ValueError("dpop: iat window out of bounds")
        self._replay = replay
        self._algorithms = algorithms
        self._nonces = nonces
        self._max_age = max_age
        self._max_future = max_future

    async def verify(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        now: float,
        access_token: str | None = None,
        require_nonce: bool = False,
    ) -> DPoPProof:
        """Check one proof for this request; returns the key thumbprint (``jkt``)."""
        try:
            header, payload = verify(
                proof, keys={}, algorithms=self._algorithms, typ=TYP, allow_embedded_jwk=True
            )
        except JwsError as e:
            raise DPoPError(e.reason) from e
        jwk = header["jwk"]
        if not isinstance(jwk, dict):  # jose.verify already parsed it; this narrows the type
            raise DPoPError("jwk not an object")
        if jwk.get("alg", header["alg"]) != header["alg"] or _alg_for(jwk) != header["alg"]:
            raise DPoPError("jwk does not match alg")
        if payload.get("htm") != method:
            raise DPoPError("htm mismatch")
        htu = payload.get("htu")
        if not isinstance(htu, str) or _normalise(htu) != _normalise(url):
            raise DPoPError("htu mismatch")
        try:
            iat = numeric_date(payload, "iat")
            jti = string(payload, "jti", max_length=256)
        except AuthError as e:
            raise DPoPError(e.reason) from e
        if not now - self._max_age <= iat <= now + self._max_future:
            raise DPoPError("iat outside the window")
        if len(jti) < 16:
            raise DPoPError("jti too short")
        if access_token is not None:
            expected = b64url_encode(hashlib.sha256(access_token.encode()).digest())
            ath = payload.get("ath")
            if not isinstance(ath, str) or not hmac.compare_digest(ath, expected):
                raise DPoPError("ath mismatch")
        nonce = self._check_nonce(payload.get("nonce"), require_nonce)
        jkt = jwk_thumbprint(jwk)
        ttl = self._max_age + self._max_future + 1
        replay_key = b64url_encode(hashlib.sha256(f"{jkt}\x00{jti}".encode()).digest())
        if not await self._replay.first_use(REPLAY_NAMESPACE, replay_key, ttl):
            raise DPoPError("jti replayed")
        return DPoPProof(jkt=jkt, jti=jti, iat=int(iat), nonce=nonce)

    def _check_nonce(self, nonce: object, required: bool) -> str | None:
        if nonce is None:
            if required:
                raise DPoPNonceRequired("nonce missing")
            return None
        if not isinstance(nonce, str):
            raise DPoPError("nonce not a string")
        if self._nonces is None:
            if required:
                raise ValueError("dpop: a nonce is required but no nonce issuer is configured")
            return nonce
        if not self._nonces.check(nonce):
            raise DPoPNonceRequired("nonce stale or forged")
        return nonce


def _alg_for(jwk: dict[str, object]) -> str:
    return EDDSA if jwk.get("kty") == "OKP" else ES256


def _normalise(url: str) -> tuple[str, str, str]:
    """(scheme, authority, path) per RFC 3986 sections 6.2.2 and 6.2.3."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError as e:
        raise DPoPError("url unparsable") from e
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        raise DPoPError("url not an absolute http(s) url")
    if ":" in host:
        host = f"[{host}]"
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return scheme, authority, _PCT.sub(_pct_normalise, parts.path) or "/"


def _pct_normalise(match: re.Match[str]) -> str:
    octet = int(match.group(1), 16)
    return chr(octet) if octet in _UNRESERVED else f"%{octet:02X}"
