"""The gateway's public keys, fetched from its JWKS and refreshed when a new key appears.

Rules:
- The URL is ``https://``, or ``http://`` to a loopback host only: keys fetched
  over a network in plain text could be swapped by anyone on the path.
- Every fetch has a timeout, refuses redirects and bodies above 64 KiB, and
  needs a 200 JSON object ``{"keys": [...]}``.
- Only public Ed25519 signing keys count (``kty`` OKP, ``crv`` Ed25519, a
  32-byte ``x``, a ``kid``; ``use`` and ``alg`` when present must be ``sig``
  and ``EdDSA``); others are skipped, a private member or a repeated ``kid``
  fails the document, and a document with no usable key fails.
- The start-up fetch must succeed. Afterwards an unknown ``kid`` triggers a
  refetch (one at a time), at most once per ``min_interval`` seconds counted
  from the last attempt, so forged key ids cannot turn the app into a
  request amplifier. A failed refetch keeps the keys already held.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from demo_backend.jws import MAX_KID_CHARS, JwsError, b64url_decode

logger = logging.getLogger("demo_backend")

MAX_JWKS_BYTES: Final = 64 * 1024
MAX_KEYS: Final = 64
DEFAULT_MIN_INTERVAL: Final = 30.0
DEFAULT_TIMEOUT: Final = 5.0
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


class JwksError(Exception):
    """The JWKS could not be fetched or holds no usable key."""


def check_jwks_url(url: str) -> str:
    """``url`` if it is an acceptable JWKS address (see module rules); ValueError otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.fragment:
        raise ValueError("demo_backend: the JWKS URL must be an http(s) URL without credentials")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError("demo_backend: a plain-http JWKS URL must point at a loopback address")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_jwks(document: object) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document by kid (see module rules)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("jwks: not a key set")
    if len(document["keys"]) > MAX_KEYS:
        raise JwksError("jwks: too many keys")
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            raise JwksError("jwks: a key is not an object")
        if _PRIVATE_MEMBERS & set(jwk):
            raise JwksError("jwks: a key has private members")
        parsed = _ed25519(jwk)
        if parsed is None:
            continue
        kid, key = parsed
        if kid in keys:
            raise JwksError("jwks: repeated kid")
        keys[kid] = key
    if not keys:
        raise JwksError("jwks: no ed25519 signing key")
    return keys


def _ed25519(jwk: Mapping[str, object]) -> tuple[str, Ed25519PublicKey] | None:
    kid, x = jwk.get("kid"), jwk.get("x")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") != "EdDSA":
        return None
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS or not isinstance(x, str):
        raise JwksError("jwks: ed25519 key without kid or x")
    try:
        raw = b64url_decode(x)
    except JwsError as e:
        raise JwksError("jwks: x is not base64url") from e
    if len(raw) != 32:
        raise JwksError("jwks: x is not 32 bytes")
    return kid, Ed25519PublicKey.from_public_bytes(raw)


class JwksCache:
    """The gateway's current signing keys, refreshed on an unknown kid (rate-limited)."""

    def __init__(
        self,
        *,
        url: str,
        session: aiohttp.ClientSession,
        now: Callable[[], float],
        min_interval: float = DEFAULT_MIN_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._url = check_jwks_url(url)
        self._session = session
        self._now = now
        self._min_interval = min_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()

    def get(self, kid: str) -> Ed25519PublicKey | None:
        """The key for ``kid`` among those held now (no fetch)."""
        return self._keys.get(kid)

    async def load(self) -> None:
        """The start-up fetch: :class:`JwksError` when it fails."""
        async with self._lock:
            await self._fetch()

    async def lookup(self, kid: str) -> Ed25519PublicKey | None:
        """The key for ``kid``, refetching the JWKS first if it is unknown and allowed."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(kid)  # another request may have just fetched it
            if key is not None:
                return key
            last = self._last_attempt
            if last is not None and self._now() - last < self._min_interval:
                return None
            try:
                await self._fetch()
            except JwksError as e:
                logger.warning("demo_backend: JWKS refetch failed (%s); keeping the old keys", e)
                return None
            return self._keys.get(kid)

    async def _fetch(self) -> None:
        self._last_attempt = self._now()
        try:
            async with self._session.get(
                self._url,
                timeout=self._timeout,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as resp:
                if resp.status != 200:
                    raise JwksError(f"jwks: status {resp.status}")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(16384):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError("jwks: document too large")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise JwksError(f"jwks: fetch failed ({type(e).__name__})") from e
        try:
            document = json.loads(bytes(body).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise JwksError("jwks: not json") from e
        self._keys = parse_jwks(document)
