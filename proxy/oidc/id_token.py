"""ID-token verification (OIDC Core 3.1.3.7) for RS256, PS256, ES256 and EdDSA.

Rules, all enforced here:

- The algorithm set is pinned by the caller (config intersected with
  discovery) and is always a subset of RS256, PS256, ES256, EdDSA/Ed25519:
  ``none`` and HMAC algorithms are never accepted, so a public key can never
  be used as an HMAC secret.
- ``kid`` is a short plain string looked up in the provider's cached JWKS
  only; ``jku``, ``x5u``, ``x5c``, ``jwk``, ``crit`` and JWE members are
  refused. The key type must match the algorithm (RSA >= 2048 bits for RS/PS,
  P-256 for ES256, Ed25519 for EdDSA). ``typ``, when present, must be ``JWT``.
- Claims: ``iss`` equals the issuer exactly; ``aud`` holds the client id and
  any other audience is listed in ``trusted_audiences``, in which case ``azp``
  must be the client id (and whenever ``azp`` is present); ``exp`` and ``iat``
  are required and checked with bounded leeway against an injected ``now``;
  ``nonce`` equals the flow's nonce (constant time); ``sub`` is 1..255
  characters; with ``max_age`` requested, ``auth_time`` is required and fresh.
- ``at_hash``, when present with an access token, must match (left half of
  SHA-256 for RS256/PS256/ES256, of SHA-512 for EdDSA on Ed25519).
- Every failure raises :class:`IdTokenError`, one opaque error; ``reason`` is
  for logs only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from proxy.auth import claims as c
from proxy.auth.errors import AuthError
from proxy.auth.jose import b64url_decode, b64url_encode, json_object
from proxy.oidc.errors import IdTokenError
from proxy.oidc.jwks import KID_PATTERN, MIN_RSA_BITS, VerificationKey

SUPPORTED_ALGORITHMS: Final = frozenset({"RS256", "PS256", "ES256", "EdDSA", "Ed25519"})
MAX_TOKEN_LENGTH: Final = 16 * 1024
MAX_SUB_LENGTH: Final = 255
_REFUSED_HEADERS: Final = frozenset(
    {"jku", "x5u", "x5c", "jwk", "crit", "b64", "zip", "enc", "epk", "p2s", "p2c", "iv", "tag"}
)
_JWT_TYPES: Final = ("jwt", "application/jwt")
_REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat")


class KeyLookup(Protocol):
    """Where verification keys come from (:class:`proxy.oidc.jwks.JwksCache` fits)."""

    async def key(self, kid: str | None, alg: str) -> VerificationKey: ...


@dataclass(frozen=True)
class IdTokenExpectations:
    """What one callback's ID token must satisfy."""

    issuer: str
    client_id: str
    nonce: str
    algorithms: frozenset[str]
    now: float
    leeway: float = c.DEFAULT_LEEWAY
    trusted_audiences: frozenset[str] = frozenset()
    max_age: int | None = None


def allowed_algorithms(configured: tuple[str, ...], announced: frozenset[str]) -> frozenset[str]:
    """Configured ∩ announced ∩ supported; IdTokenError when nothing is left."""
    allowed = frozenset(configured) & announced & SUPPORTED_ALGORITHMS
    if not allowed:
        raise IdTokenError("no id token algorithm both configured and announced")
    return allowed


async def verify_id_token(
    token: str,
    *,
    keys: KeyLookup,
    expect: IdTokenExpectations,
    access_token: str | None = None,
) -> dict[str, object]:
    """Verify signature and claims of an ID token; returns its claims."""
    if not expect.algorithms or not expect.algorithms <= SUPPORTED_ALGORITHMS:
        raise ValueError("oidc: id token algorithms must be a non-empty subset of the supported")
    header, payload, signing_input, signature = _split(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in expect.algorithms:
        raise IdTokenError("header: alg missing or not allowed")
    if _REFUSED_HEADERS & header.keys():
        raise IdTokenError("header: refused member")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _JWT_TYPES):
        raise IdTokenError("header: typ is not JWT")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid)):
        raise IdTokenError("header: kid is not a plain key id")
    key = await keys.key(kid, alg)
    check_signature(alg, key, signing_input, signature)
    claims = json_object_or_error(payload)
    check_claims(claims, expect)
    if access_token is not None and "at_hash" in claims:
        check_at_hash(claims["at_hash"], access_token, alg)
    return claims


def check_signature(alg: str, key: VerificationKey, signing_input: bytes, signature: bytes) -> None:
    """Verify a JWS signature; the key type must be the one ``alg`` needs."""
    try:
        if alg in ("RS256", "PS256") and isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS or len(signature) != (key.key_size + 7) // 8:
                raise IdTokenError("signature: bad rsa key or signature length")
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg == "RS256"
                else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            )
            key.verify(signature, signing_input, pad, hashes.SHA256())
            return
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1) or len(signature) != 64:
                raise IdTokenError("signature: bad ec key or signature length")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return
        if alg in ("EdDSA", "Ed25519") and isinstance(key, Ed25519PublicKey):
            if len(signature) != 64:
                raise IdTokenError("signature: bad length")
            key.verify(signature, signing_input)
            return
    except InvalidSignature as e:
        raise IdTokenError("signature: mismatch") from e
    raise IdTokenError("signature: key type does not match alg")


def check_claims(claims: Mapping[str, object], expect: IdTokenExpectations) -> None:
    """OIDC Core 3.1.3.7 steps 2-5, 9-11 and 13 on verified claims."""
    try:
        c.check_registered(
            claims,
            now=expect.now,
            audience=expect.client_id,
            issuer=expect.issuer,
            leeway=expect.leeway,
            required=_REQUIRED_CLAIMS,
        )
        c.string(claims, "sub", max_length=MAX_SUB_LENGTH)
        auth_time = c.optional_time(claims, "auth_time")
    except AuthError as e:
        raise IdTokenError(f"claims: {e.reason}") from e
    _check_audiences(claims, expect)
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(
        nonce.encode("utf-8"), expect.nonce.encode("utf-8")
    ):
        raise IdTokenError("claims: nonce mismatch")
    if expect.max_age is not None:
        if auth_time is None:
            raise IdTokenError("claims: auth_time missing though max_age was requested")
        if expect.now > auth_time + expect.max_age + expect.leeway:
            raise IdTokenError("claims: authentication older than max_age")
    if auth_time is not None and auth_time > expect.now + expect.leeway:
        raise IdTokenError("claims: auth_time in the future")


def check_at_hash(value: object, access_token: str, alg: str) -> None:
    """``at_hash`` must be the left half of the alg's hash of the access token."""
    digest = (hashlib.sha512 if alg in ("EdDSA", "Ed25519") else hashlib.sha256)(
        access_token.encode("ascii", "replace")
    ).digest()
    expected = b64url_encode(digest[: len(digest) // 2])
    if not isinstance(value, str) or not hmac.compare_digest(value, expected):
        raise IdTokenError("claims: at_hash mismatch")


def json_object_or_error(data: bytes) -> dict[str, object]:
    """The token's JSON claims object, or IdTokenError."""
    try:
        return json_object(data)
    except AuthError as e:
        raise IdTokenError(e.reason) from e


def _check_audiences(claims: Mapping[str, object], expect: IdTokenExpectations) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
    others = {a for a in audiences if a != expect.client_id}
    if not others <= expect.trusted_audiences:
        raise IdTokenError("claims: untrusted extra audience")
    azp = claims.get("azp")
    if (others or azp is not None) and azp != expect.client_id:
        raise IdTokenError("claims: azp is not the client")


def _split(token: str) -> tuple[dict[str, object], bytes, bytes, bytes]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise IdTokenError("compact: not a string or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise IdTokenError("compact: not three parts (encrypted or malformed)")
    try:
        header = json_object(b64url_decode(parts[0]))
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except AuthError as e:
        raise IdTokenError(e.reason) from e
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature
