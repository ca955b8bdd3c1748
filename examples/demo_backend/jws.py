"""Compact JWS, as little as this app needs: HS256 signing and EdDSA verification.

The app signs its login assertion with HS256 (a secret it shares with the
gateway) and verifies tokengate's identity token with EdDSA (a key from the
gateway's JWKS). Standard library and ``cryptography`` only.

Rules for verification:
- base64url without padding, strictly: any other character fails.
- The header holds only ``alg``, ``typ`` and ``kid``: ``alg`` is pinned to
  ``EdDSA`` and ``typ`` to the caller's exact value, so ``none``, HS/EdDSA
  confusion, ``jku``/``x5u``/``jwk``/``crit`` are all refused. ``kid`` is a
  short string the caller looks up in its own key set, never a URL or path.
- JSON with a repeated member is refused: two readers must never see different
  values in one token.
- Every failure raises the one :class:`JwsError`; its text is for logs only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_TOKEN_CHARS: Final = 8192
MAX_KID_CHARS: Final = 128
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_HEADER_MEMBERS: Final = frozenset({"alg", "typ", "kid"})


class JwsError(Exception):
    """A token that is malformed, wrongly signed or of the wrong kind."""


def b64url_encode(raw: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`; :class:`JwsError` on anything else."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise JwsError("jws: invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise JwsError("jws: invalid base64url") from e


def _compact_json(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise JwsError("jws: repeated json member")
        result[key] = value
    return result


def _json_object(raw: bytes) -> dict[str, object]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise JwsError("jws: invalid json") from e
    if not isinstance(value, dict):
        raise JwsError("jws: json is not an object")
    return value


def sign_hs256(claims: Mapping[str, object], secret: bytes, *, typ: str) -> str:
    """A compact JWS of ``claims`` with header ``{"alg": "HS256", "typ": typ}`` (no kid)."""
    header = {"alg": "HS256", "typ": typ}
    signing_input = f"{b64url_encode(_compact_json(header))}.{b64url_encode(_compact_json(claims))}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(mac)}"


@dataclass(frozen=True, slots=True)
class UnverifiedJws:
    """A parsed token whose signature is not checked yet: read ``kid``, then verify."""

    kid: str
    payload: dict[str, object]
    signing_input: bytes
    signature: bytes


def parse_eddsa(token: str, *, typ: str) -> UnverifiedJws:
    """Parse ``token`` and check its header (EdDSA, exact ``typ``, a plain ``kid``)."""
    parts = token.split(".")
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 3:
        raise JwsError("jws: not a compact jws")
    header = _json_object(b64url_decode(parts[0]))
    if not set(header) <= _HEADER_MEMBERS:
        raise JwsError("jws: unexpected header member")
    if header.get("alg") != "EdDSA" or header.get("typ") != typ:
        raise JwsError("jws: wrong alg or typ")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS:
        raise JwsError("jws: kid missing or too long")
    return UnverifiedJws(
        kid=kid,
        payload=_json_object(b64url_decode(parts[1])),
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        signature=b64url_decode(parts[2]),
    )


def verify_eddsa(jws: UnverifiedJws, key: Ed25519PublicKey) -> dict[str, object]:
    """The payload of ``jws`` when ``key`` signed it; :class:`JwsError` otherwise."""
    try:
        key.verify(jws.signature, jws.signing_input)
    except InvalidSignature as e:
        raise JwsError("jws: signature mismatch") from e
    return jws.payload
