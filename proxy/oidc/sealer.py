"""Sealing the login flow state into a short-lived cookie value.

A started login (state, nonce, PKCE verifier, return path) must survive the
round trip through the provider without server-side storage, and the browser
must be able neither to read nor to change it: the verifier is a secret and
the nonce binds the ID token to this browser. :class:`AesGcmFlowSealer` is
the recipe: AES-256-GCM under a 32-byte key (the gateway derives it from the
keyring), a 96-bit random nonce per value from the project RNG, the expiry
inside the authenticated plaintext and a fixed context string as associated
data, so a value sealed for another purpose never opens here.

Format: ``v1.`` + base64url(nonce || ciphertext || tag). Every failure to open
(malformed, tampered, other key, expired) raises one opaque
:class:`FlowSealError`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_client.rng import random_bytes
from proxy.auth.errors import AuthError
from proxy.auth.jose import b64url_decode, b64url_encode
from proxy.oidc.errors import OidcError

PREFIX: Final = "v1."
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
MAX_SEALED_LENGTH: Final = 3800  # one cookie stays under the 4096-byte browser limit
DEFAULT_CONTEXT: Final = b"tokengate/oidc-flow/v1"
_EXPIRY: Final = struct.Struct(">Q")


class FlowSealError(OidcError):
    """A sealed flow value could not be opened; one error for every cause."""

    code = "oidc_invalid_flow"

    def __init__(self, reason: str) -> None:
        super().__init__("oidc: login state not valid", reason=reason)


class FlowSealer(Protocol):
    """Seals bytes into a cookie-safe string and opens it again (raising on tamper/expiry)."""

    def seal(self, data: bytes) -> str: ...

    def open(self, sealed: str) -> bytes: ...


class AesGcmFlowSealer:
    """AES-256-GCM :class:`FlowSealer` with a built-in expiry (see the module docstring)."""

    def __init__(
        self,
        key: bytes,
        *,
        ttl: float = 600.0,
        clock: Callable[[], float] = time.time,
        context: bytes = DEFAULT_CONTEXT,
    ) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise ValueError(f"oidc: flow sealing key must be {KEY_BYTES} bytes")
        if not 0 < ttl <= 3600:
            raise ValueError("oidc: flow ttl must be between 0 and 1 hour")
        self._aead = AESGCM(key)
        self._ttl = ttl
        self._clock = clock
        self._context = context

    @classmethod
    def generate_key(cls) -> bytes:
        """A fresh random key (tests and single-process setups; the gateway derives its own)."""
        return random_bytes(KEY_BYTES)

    def seal(self, data: bytes) -> str:
        """Encrypt ``data`` with its expiry; the result is safe in a cookie value."""
        expiry = int(self._clock() + self._ttl)
        nonce = random_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, _EXPIRY.pack(expiry) + data, self._context)
        value = PREFIX + b64url_encode(nonce + sealed)
        if len(value) > MAX_SEALED_LENGTH:
            raise ValueError("oidc: flow state too large for a cookie")
        return value

    def open(self, sealed: str) -> bytes:
        """The sealed bytes, or FlowSealError when malformed, tampered, foreign or expired."""
        if not isinstance(sealed, str) or len(sealed) > MAX_SEALED_LENGTH:
            raise FlowSealError("sealed: not a string or too long")
        if not sealed.startswith(PREFIX):
            raise FlowSealError("sealed: unknown version")
        try:
            raw = b64url_decode(sealed[len(PREFIX) :])
        except AuthError as e:
            raise FlowSealError("sealed: bad encoding") from e
        if len(raw) < NONCE_BYTES + _EXPIRY.size + 16:
            raise FlowSealError("sealed: too short")
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._context)
        except InvalidTag as e:
            raise FlowSealError("sealed: authentication failed") from e
        (expiry,) = _EXPIRY.unpack_from(plain)
        if self._clock() >= expiry:
            raise FlowSealError("sealed: expired")
        return plain[_EXPIRY.size :]
