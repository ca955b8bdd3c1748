"""The demo app's login cookie: a random session id plus an HMAC over it.

Rules:
- The cookie value is ``<sid>.<mac>``: ``sid`` is 32 random bytes (base64url),
  ``mac`` is HMAC-SHA256 under the app's secret. A forged or altered cookie is
  rejected before any database lookup.
- The database keeps only SHA-256(sid), so its contents cannot be replayed.
- The secret is 32 random bytes in ``session.key`` in the data dir, created 0600
  on first start; a file readable by group or others is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

COOKIE_NAME = "demo_session"
KEY_FILE = "session.key"
_SECRET_BYTES = 32
_MAC_CONTEXT = b"demo_backend/session/v1|"


class SecretFileError(Exception):
    """The session secret file is unusable (wrong size or too open); the app will not start."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def load_or_create_secret(data_dir: Path) -> bytes:
    """Read the session secret from ``data_dir``, creating it (0600) on first start.

    Blocking file IO: call it from a thread.
    """
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_secret(path)
    secret = secrets.token_bytes(_SECRET_BYTES)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
        f.flush()
        os.fsync(f.fileno())
    return secret


def _read_secret(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077:
            raise SecretFileError(f"demo_backend: {path} must not be readable by group or others")
        secret = f.read(_SECRET_BYTES + 1)
    if len(secret) != _SECRET_BYTES:
        raise SecretFileError(f"demo_backend: {path} must hold exactly {_SECRET_BYTES} bytes")
    return secret


@dataclass(frozen=True, slots=True)
class NewSession:
    """A freshly minted session: the cookie value for the client, the hash for the database."""

    cookie: str
    sid_hash: str


class SessionSigner:
    """Mints and checks session cookies under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != _SECRET_BYTES:
            raise ValueError("demo_backend: session secret must be 32 bytes")
        self._secret = secret

    def _mac(self, sid: str) -> str:
        return _b64(hmac.new(self._secret, _MAC_CONTEXT + sid.encode("ascii"), "sha256").digest())

    def mint(self) -> NewSession:
        """A new random session id, signed."""
        sid = _b64(secrets.token_bytes(32))
        return NewSession(cookie=f"{sid}.{self._mac(sid)}", sid_hash=sid_hash(sid))

    def verify(self, cookie: str) -> str | None:
        """The session id's hash when the cookie is authentic, else None."""
        sid, sep, mac = cookie.partition(".")
        if not sep or not sid.isascii() or not mac.isascii() or len(cookie) > 200:
            return None
        if not hmac.compare_digest(self._mac(sid), mac):
            return None
        return sid_hash(sid)


def sid_hash(sid: str) -> str:
    """What the database stores for a session id."""
    return hashlib.sha256(sid.encode("ascii")).hexdigest()
