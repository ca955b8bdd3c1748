"""The state a started login carries through the provider, and its small helpers.

:class:`FlowState` is the plaintext the flow cookie seals: state, nonce, PKCE
verifier, return path, redirect URI, issuer, creation time and the requested
``max_age``. Parsing is strict (every member present and of its type), so a
value sealed by another version or for another purpose never becomes a flow.
``safe_return_path`` keeps the post-login redirect on the gateway's own origin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from proxy.auth.errors import AuthError
from proxy.auth.jose import b64url_encode, json_compact, json_object
from proxy.oidc.sealer import FlowSealError

MAX_RETURN_PATH: Final = 2048


def safe_return_path(value: str | None, default: str = "/") -> str:
    """``value`` if it is a same-origin relative path, else ``default`` (no open redirect)."""
    if not value or len(value) > MAX_RETURN_PATH or not value.startswith("/"):
        return default
    if value.startswith("//") or "\\" in value or not value.isprintable() or " " in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def pkce_challenge(verifier: str) -> str:
    """The RFC 7636 S256 code challenge of ``verifier``."""
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True, repr=False)
class FlowState:
    """What a started login must remember until its callback (sealed in the cookie)."""

    state: str
    nonce: str
    code_verifier: str
    return_to: str
    redirect_uri: str
    issuer: str
    created: float
    max_age: int | None = None

    def to_bytes(self) -> bytes:
        """Compact JSON of the fields (the plaintext the sealer protects)."""
        return json_compact(
            {
                "s": self.state,
                "n": self.nonce,
                "v": self.code_verifier,
                "r": self.return_to,
                "u": self.redirect_uri,
                "i": self.issuer,
                "t": self.created,
                "m": self.max_age,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FlowState:
        """Parse :meth:`to_bytes` output; FlowSealError on any deviation."""
        try:
            doc = json_object(data)
        except AuthError as e:
            raise FlowSealError("flow: not json") from e
        strings = [doc.get(k) for k in ("s", "n", "v", "r", "u", "i")]
        created, max_age = doc.get("t"), doc.get("m")
        if not all(isinstance(v, str) and v for v in strings):
            raise FlowSealError("flow: missing member")
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise FlowSealError("flow: bad created time")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise FlowSealError("flow: bad max_age")
        s, n, v, r, u, i = (str(x) for x in strings)
        return cls(s, n, v, r, u, i, float(created), max_age)
