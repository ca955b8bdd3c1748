"""The app's side of tokengate's backend login: the ``Tokengate-Login`` assertion.

When tokengate forwards a login request it adds a single-use
``Tokengate-Login-Nonce`` header. If the login succeeds, the app answers with a
``Tokengate-Login`` header: an HS256 JWT under a secret it shares with the
gateway, saying who logged in. The gateway verifies it, creates its own
session, and strips the header. On logout the app answers ``Tokengate-Logout: 1``.

Rules:
- The secret is the file's bytes less one trailing newline (``\n``,
  ``\r\n`` or ``\r``, as an editor leaves it), at least 32 of them: random
  bytes, or base64url text used as it is (not decoded). That is exactly how
  the gateway reads the same file, so both sides hold the same key. A file
  readable by group or others stops start-up.
- Header ``{"alg": "HS256", "typ": "tokengate-login+jwt"}`` (no ``kid``);
  claims ``iss aud iat exp jti nonce sub roles tenant amr``; ``exp`` is ``iat``
  + 30 s; ``jti`` is 128 random bits.
- Only a well-formed nonce is echoed: exactly one header of 1 to 256 visible
  ASCII characters. Anything else gets no assertion, so the gateway refuses
  the login rather than the app guessing.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from demo_backend.jws import b64url_encode, sign_hs256
from demo_backend.sessions import SecretFileError

LOGIN_NONCE_HEADER: Final = "Tokengate-Login-Nonce"
LOGIN_HEADER: Final = "Tokengate-Login"
LOGOUT_HEADER: Final = "Tokengate-Logout"
TYP: Final = "tokengate-login+jwt"
ISSUER: Final = "demo-app"
TENANT: Final = "demo"
AMR: Final = ("pwd",)
LIFETIME: Final = 30
MIN_SECRET_BYTES: Final = 32
_MAX_SECRET_FILE_BYTES: Final = 4096
_NONCE: Final = re.compile(r"[\x21-\x7e]{1,256}")


def load_login_secret(path: Path) -> bytes:
    """The shared HS256 secret from ``path`` (see module rules). Blocking: call from a thread.

    The path may be a symlink (Kubernetes mounts secrets that way); the mode
    of the file actually opened is what is checked.
    """
    with open(path, "rb") as f:
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077:
            raise SecretFileError(f"demo_backend: {path} must not be readable by group or others")
        content = f.read(_MAX_SECRET_FILE_BYTES + 1)
    if len(content) > _MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"demo_backend: {path} is too large for a login secret")
    secret = content.removesuffix(b"\n").removesuffix(b"\r")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretFileError(
            f"demo_backend: {path} must hold at least {MIN_SECRET_BYTES} bytes of secret"
        )
    return secret


def login_nonce(values: Sequence[str]) -> str | None:
    """The nonce to echo, from every ``Tokengate-Login-Nonce`` field line; None if unusable."""
    if len(values) != 1 or not _NONCE.fullmatch(values[0]):
        return None
    return values[0]


class LoginAsserter:
    """Mints ``Tokengate-Login`` assertions under the shared secret."""

    def __init__(
        self,
        secret: bytes,
        *,
        audience: str,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"demo_backend: login secret must be at least {MIN_SECRET_BYTES} bytes"
            )
        if not audience:
            raise ValueError("demo_backend: login assertion audience must not be empty")
        self._secret = secret
        self._audience = audience
        self._random = random_bytes

    def __repr__(self) -> str:
        return f"LoginAsserter(audience={self._audience!r})"

    def assertion(self, *, username: str, roles: Sequence[str], nonce: str, now: float) -> str:
        """The JWT saying ``username`` with ``roles`` just logged in by password."""
        iat = int(now)
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": self._audience,
            "iat": iat,
            "exp": iat + LIFETIME,
            "jti": b64url_encode(self._random(16)),
            "nonce": nonce,
            "sub": username,
            "roles": list(roles),
            "tenant": TENANT,
            "amr": list(AMR),
        }
        return sign_hs256(claims, self._secret, typ=TYP)
