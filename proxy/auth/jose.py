"""Compact JWS (RFC 7515) for EdDSA, ES256 and, where a caller asks, HS256.

Rules, all enforced here so no caller can forget one:

- The caller pins the algorithms of every verification; ``none`` and anything
  outside EdDSA / ES256 / HS256 is never accepted, whatever the caller passes.
- The key object decides what it can verify: an Ed25519 public key only
  EdDSA, a P-256 public key only ES256, an :class:`HmacKey` only HS256. An HS256
  token can therefore never be checked with a public key's bytes as its secret
  (the classic key-confusion attack), nor an EdDSA token with a shared secret.
- ``kid`` is a short plain string looked up in the caller's mapping, never a
  path or URL; ``jku``, ``x5u``, ``x5c``, ``crit``, ``b64`` and JWE members are
  refused; an embedded ``jwk`` only when the caller allows it (DPoP).
- ``typ`` must equal the expected type (case-insensitive, ``application/``
  prefix optional, RFC 7515 section 4.1.9).
- base64url is strict (no padding, only the URL-safe alphabet, canonical
  trailing bits) and JSON refuses duplicate members and non-finite numbers, so
  one token has exactly one meaning.
- Every failure raises :class:`JwsError`, one opaque error; ``reason`` is for
  logs only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proxy.auth.errors import AuthError

EDDSA: Final = "EdDSA"
ES256: Final = "ES256"
HS256: Final = "HS256"
SUPPORTED_ALGORITHMS: Final = frozenset({EDDSA, ES256, HS256})
MAX_TOKEN_LENGTH: Final = 16 * 1024
MIN_HMAC_SECRET: Final = 32
_KID = re.compile(r"[A-Za-z0-9_.\-~]{1,128}")
_B64URL = re.compile(r"[A-Za-z0-9_\-]*")
_REFUSED_HEADERS: Final = frozenset(
    {"jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc", "epk", "p2s"}
)
# Members a public JWK may carry; everything else (d, p, q, k, oth...) is refused.
_PUBLIC_JWK_MEMBERS: Final = frozenset(
    {"kty", "crv", "x", "y", "kid", "alg", "use", "key_ops", "ext"}
)
_THUMBPRINT_MEMBERS: Final = {
    "OKP": ("crv", "kty", "x"),
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
}


class JwsError(AuthError):
    """A token failed to parse or verify; one error for every cause."""

    code = "invalid_token"

    def __init__(self, reason: str) -> None:
        super().__init__("jose: invalid token", reason=reason)


class SigningKey(Protocol):
    """What the JWS and message signers need from a key (``KeySigner`` fits)."""

    @property
    def kid(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """Raw signature: 64 bytes for EdDSA and ES256 (r||s), 32 for HS256."""
        ...


@dataclass(frozen=True, repr=False)
class HmacKey:
    """A shared HS256 secret; only ever used where a config asks for HS256."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_HMAC_SECRET:
            raise ValueError(f"jose: hmac secret must be at least {MIN_HMAC_SECRET} bytes")

    def __repr__(self) -> str:
        return "HmacKey(<secret>)"


# What verifies a token: a public key, or the shared secret where HS256 is allowed.
PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey | HmacKey


@dataclass(frozen=True, eq=False)
class LocalSigningKey:
    """A :class:`SigningKey` over an in-process key (tests, demo, HS256 backends).

    Gateway keys come from the keyring (``kms_client.KeySigner``); this class is
    for keys a caller already holds. ``kid`` defaults to the RFC 7638 thumbprint;
    ``verification_key`` is what a verifier's key mapping holds for it.
    """

    kid: str
    algorithm: str
    _sign: Callable[[bytes], bytes] = field(repr=False)
    verification_key: PublicKey = field(repr=False)

    @classmethod
    def ed25519(cls, private: Ed25519PrivateKey, kid: str | None = None) -> LocalSigningKey:
        public = private.public_key()
        return cls(kid or thumbprint_of(public), EDDSA, private.sign, public)

    @classmethod
    def es256(cls, private: ec.EllipticCurvePrivateKey, kid: str | None = None) -> LocalSigningKey:
        if not isinstance(private.curve, ec.SECP256R1):
            raise ValueError("jose: ES256 needs a P-256 key")
        public = private.public_key()

        def sign(data: bytes) -> bytes:
            r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return cls(kid or thumbprint_of(public), ES256, sign, public)

    @classmethod
    def hs256(cls, key: HmacKey, kid: str) -> LocalSigningKey:
        def sign(data: bytes) -> bytes:
            return hmac.new(key.secret, data, hashlib.sha256).digest()

        return cls(kid, HS256, sign, key)

    def sign(self, data: bytes) -> bytes:
        return self._sign(data)


# -- encodings ---------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: URL-safe alphabet only, canonical trailing bits."""
    if len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise JwsError("base64url: bad alphabet or length")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise JwsError("base64url: undecodable") from e
    if b64url_encode(raw) != text:  # non-zero padding bits: a second spelling of the same bytes
        raise JwsError("base64url: non-canonical")
    return raw


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise JwsError("json: duplicate member")
        out[key] = value
    return out


def _refuse_constant(name: str) -> object:
    raise JwsError(f"json: non-finite number {name}")


def json_object(data: bytes) -> dict[str, object]:
    """A JSON object from UTF-8 bytes; duplicate members and NaN/Infinity refused."""
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise JwsError("json: malformed") from e
    if not isinstance(value, dict):
        raise JwsError("json: not an object")
    return value


def json_compact(value: Mapping[str, object]) -> bytes:
    """Compact JSON, the form every token here is signed in."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# -- keys and thumbprints ----------------------------------------------------


def public_jwk(key: Ed25519PublicKey | ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The minimal public JWK (RFC 8037 OKP or RFC 7518 EC P-256) of a key."""
    if isinstance(key, Ed25519PublicKey):
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(_raw(key))}
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        numbers = key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        }
    raise ValueError("jose: only Ed25519 and P-256 public keys have a JWK here")


def jwk_thumbprint(jwk: Mapping[str, object]) -> str:
    """RFC 7638 SHA-256 thumbprint of a JWK (OKP, EC or RSA members)."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise JwsError("jwk: cannot compute thumbprint")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def thumbprint_of(key: Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 thumbprint of a public key: the ``kid`` and ``jkt`` of this project."""
    return jwk_thumbprint(public_jwk(key))


def public_key_from_jwk(jwk: object) -> Ed25519PublicKey | ec.EllipticCurvePublicKey:
    """Parse a public Ed25519 or P-256 JWK; private members or anything else refused."""
    if not isinstance(jwk, dict) or not set(jwk) <= _PUBLIC_JWK_MEMBERS:
        raise JwsError("jwk: not a public-only jwk")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    x = _coordinate(jwk.get("x"))
    try:
        if kty == "OKP" and crv == "Ed25519" and "y" not in jwk:
            return Ed25519PublicKey.from_public_bytes(x)
        if kty == "EC" and crv == "P-256":
            y = _coordinate(jwk.get("y"))
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            )
            return numbers.public_key()
    except ValueError as e:
        raise JwsError("jwk: invalid point") from e
    raise JwsError("jwk: unsupported key type")


def _coordinate(value: object) -> bytes:
    if not isinstance(value, str):
        raise JwsError("jwk: missing coordinate")
    raw = b64url_decode(value)
    if len(raw) != 32:
        raise JwsError("jwk: bad coordinate length")
    return raw


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


# -- sign and verify ---------------------------------------------------------


def sign(
    payload: Mapping[str, object],
    key: SigningKey,
    *,
    typ: str,
    extra_header: Mapping[str, object] | None = None,
) -> str:
    """A compact JWS of ``payload`` with header ``{alg, typ, kid}`` (+ ``extra_header``)."""
    header: dict[str, object] = {"alg": key.algorithm, "typ": typ, "kid": key.kid}
    for name, value in (extra_header or {}).items():
        if name in header or name in _REFUSED_HEADERS:
            raise ValueError(f"jose: header member {name!r} cannot be set here")
        header[name] = value
    return encode_compact(header, json_compact(payload), key)


def encode_compact(header: Mapping[str, object], payload: bytes, key: SigningKey) -> str:
    """WARNING: no header policy; use :func:`sign`. Serializes and signs as given."""
    if header.get("alg") != key.algorithm or key.algorithm not in SUPPORTED_ALGORITHMS:
        raise ValueError("jose: header alg does not match the key")
    signing_input = f"{b64url_encode(json_compact(header))}.{b64url_encode(payload)}"
    signature = key.sign(signing_input.encode("ascii"))
    if len(signature) != (32 if key.algorithm == HS256 else 64):
        raise ValueError("jose: signer returned a signature of the wrong length")
    return f"{signing_input}.{b64url_encode(signature)}"


def verify(
    token: str,
    *,
    keys: Mapping[str, PublicKey],
    algorithms: frozenset[str],
    typ: str,
    allow_embedded_jwk: bool = False,
    require_kid: bool = True,
) -> tuple[dict[str, object], dict[str, object]]:
    """Verify a compact JWS and return ``(header, claims)``; claims are NOT checked here.

    With ``allow_embedded_jwk`` the header must carry a public ``jwk`` and that
    key verifies the signature (DPoP); ``keys`` is then unused. Otherwise the key
    is ``keys[kid]``; without ``require_kid`` a token with no ``kid`` uses the one
    key of a single-key mapping.
    """
    if not algorithms or not algorithms <= SUPPORTED_ALGORITHMS:
        raise ValueError("jose: algorithms must be a non-empty subset of EdDSA, ES256, HS256")
    header, payload, signing_input, signature = _split(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise JwsError("header: alg missing or not allowed")
    if not _typ_matches(header.get("typ"), typ):
        raise JwsError("header: wrong typ")
    if _REFUSED_HEADERS & header.keys():
        raise JwsError("header: refused member")
    key = _select_key(header, keys, allow_embedded_jwk=allow_embedded_jwk, require_kid=require_kid)
    _check_signature(alg, key, signing_input, signature)
    return header, json_object(payload)


def _split(token: str) -> tuple[dict[str, object], bytes, bytes, bytes]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise JwsError("compact: not a string or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsError("compact: not three parts")
    header = json_object(b64url_decode(parts[0]))
    payload = b64url_decode(parts[1])
    signature = b64url_decode(parts[2])
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _typ_matches(value: object, expected: str) -> bool:
    if not isinstance(value, str):
        return False
    found = value.lower().removeprefix("application/")
    return found == expected.lower().removeprefix("application/")


def _select_key(
    header: Mapping[str, object],
    keys: Mapping[str, PublicKey],
    *,
    allow_embedded_jwk: bool,
    require_kid: bool,
) -> PublicKey:
    if "jwk" in header:
        if not allow_embedded_jwk:
            raise JwsError("header: embedded jwk not allowed")
        return public_key_from_jwk(header["jwk"])
    if allow_embedded_jwk:
        raise JwsError("header: jwk missing")
    kid = header.get("kid")
    if kid is None and not require_kid and len(keys) == 1:
        return next(iter(keys.values()))
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise JwsError("header: kid missing or not a plain key id")
    key = keys.get(kid)
    if key is None:
        raise JwsError("header: unknown kid")
    return key


def _check_signature(alg: str, key: PublicKey, signing_input: bytes, signature: bytes) -> None:
    try:
        if alg == EDDSA and isinstance(key, Ed25519PublicKey):
            if len(signature) != 64:
                raise JwsError("signature: bad length")
            key.verify(signature, signing_input)
            return
        if (
            alg == ES256
            and isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, ec.SECP256R1)
        ):
            if len(signature) != 64:
                raise JwsError("signature: bad length")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return
        if alg == HS256 and isinstance(key, HmacKey):
            expected = hmac.new(key.secret, signing_input, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, signature):
                raise JwsError("signature: mismatch")
            return
    except InvalidSignature as e:
        raise JwsError("signature: mismatch") from e
    raise JwsError("signature: key type does not match alg")
