"""The double envelope between gateway and worker, and the KMS's key release wrapping.

Rules (docs/tee-protocol.md, "The double envelope"):

- ``binding = {tee_id, worker_key, job, tenant, request_id, grant_id, expires_at}``
  and ``info = "tokengate-tee-envelope/1" || 0x00 || canonical_json(binding)``.
  Every layer is bound to ``info``, so changing any binding field breaks them all.
- Layer 2: ``ct2 = AES-256-GCM(K2, n2, canonical_json({"values": [...]}), aad=info)``
  under the one-time key K2 the KMS releases for ``grant_id``.
- Layer 1: HPKE base mode (X25519, HKDF-SHA256, AES-256-GCM) to ``worker_key``
  with ``info``; plaintext ``R (32 B) || n2 (12 B) || ct2``. R is a fresh
  response key chosen by the gateway.
- Response: ``AES-256-GCM(R, nonce, canonical_json(result), aad=info || "response")``
  with ``result = {"values": [...]}`` or ``{"error": code}``.
- Release: K2 sealed with the same HPKE suite to the attested worker key with
  ``info = "tokengate-kbs-release/1" || 0x00 || canonical_json(binding)``.

Every failure to open raises one opaque :class:`~tee.errors.EnvelopeError`
(it says where, never which byte or key), like Fernet's ``InvalidToken``. The
module does no IO and keeps no state.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tee.errors import EnvelopeError, JobRefused
from tee.wire import b64d, b64e, canonical_json

VERSION = 1
ENVELOPE_DOMAIN = b"tokengate-tee-envelope/1"
RELEASE_DOMAIN = b"tokengate-kbs-release/1"
RESPONSE_SUFFIX = b"response"
KEY_SIZE = 32  # K2, R and X25519 public keys
NONCE_SIZE = 12
_TAG_SIZE = 16
_HPKE_ENC_SIZE = 32
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_MAX_ID = 512
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_BINDING_FIELDS = frozenset(
    {"tee_id", "worker_key", "job", "tenant", "request_id", "grant_id", "expires_at"}
)


@dataclass(frozen=True, slots=True)
class Binding:
    """What one envelope (and the key released for it) is bound to."""

    tee_id: str
    worker_key: bytes  # the worker's raw X25519 public key (32 B)
    job: str
    tenant: str
    request_id: str
    grant_id: str
    expires_at: int  # unix seconds

    def __post_init__(self) -> None:
        for name in ("tee_id", "job", "tenant", "request_id", "grant_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID or not _utf8(value):
                raise EnvelopeError(f"envelope: binding {name} must be a non-empty string")
        if not isinstance(self.worker_key, bytes) or len(self.worker_key) != KEY_SIZE:
            raise EnvelopeError(f"envelope: binding worker_key must be {KEY_SIZE} bytes")
        if not isinstance(self.expires_at, int) or isinstance(self.expires_at, bool):
            raise EnvelopeError("envelope: binding expires_at must be an integer")

    def to_json(self) -> dict[str, object]:
        """The binding as it travels (``worker_key`` in base64url)."""
        return {
            "tee_id": self.tee_id,
            "worker_key": b64e(self.worker_key),
            "job": self.job,
            "tenant": self.tenant,
            "request_id": self.request_id,
            "grant_id": self.grant_id,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, doc: object) -> Self:
        """Parse a binding that must have exactly the protocol's fields."""
        if not isinstance(doc, dict) or set(doc) != _BINDING_FIELDS:
            raise EnvelopeError("envelope: binding must have exactly the protocol's fields")
        try:
            worker_key = b64d(doc["worker_key"])
        except ValueError as e:
            raise EnvelopeError("envelope: binding worker_key must be base64url") from e
        return cls(
            tee_id=doc["tee_id"],
            worker_key=worker_key,
            job=doc["job"],
            tenant=doc["tenant"],
            request_id=doc["request_id"],
            grant_id=doc["grant_id"],
            expires_at=doc["expires_at"],
        )

    def info(self) -> bytes:
        """The HPKE ``info`` and AES-GCM ``aad`` of the envelope's layers."""
        return ENVELOPE_DOMAIN + b"\x00" + canonical_json(self.to_json())

    def release_info(self) -> bytes:
        """The HPKE ``info`` of the KMS's release of K2 for this binding."""
        return RELEASE_DOMAIN + b"\x00" + canonical_json(self.to_json())


class Sealed(NamedTuple):
    """What the gateway sends (``envelope``) and keeps to read the answer (``response_key``)."""

    envelope: dict[str, object]
    response_key: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed request body: the binding in clear and layer 1 still sealed."""

    binding: Binding
    sealed: bytes


@dataclass(frozen=True, slots=True, repr=False)
class Inner:
    """Layer 1 opened: the response key and layer 2, still under K2."""

    response_key: bytes
    nonce: bytes
    ciphertext: bytes


def _utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 spelling (a lone surrogate has none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _public_key(raw: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError as e:
        raise EnvelopeError("envelope: worker_key is not an X25519 public key") from e


def _values_json(values: Sequence[str]) -> bytes:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise EnvelopeError("envelope: values must be a list of strings")
    try:
        return canonical_json({"values": list(values)})
    except UnicodeEncodeError as e:  # a lone surrogate has no UTF-8 spelling
        raise EnvelopeError("envelope: values must be valid unicode") from e


def _parse_values(raw: bytes, where: str) -> list[str]:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise EnvelopeError(f"envelope: {where} is not JSON") from e
    if not isinstance(doc, dict) or set(doc) != {"values"}:
        raise EnvelopeError(f"envelope: {where} must be {{values}}")
    values = doc["values"]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise EnvelopeError(f"envelope: {where} values must be a list of strings")
    return values


def seal(binding: Binding, key: bytes, values: Sequence[str]) -> Sealed:
    """Gateway side: double-envelope ``values`` for ``binding`` under K2 (``key``).

    Returns the request body and the fresh response key R, which only the
    caller keeps: it is the only key that opens (and could forge) the answer.
    """
    if len(key) != KEY_SIZE:
        raise EnvelopeError(f"envelope: the one-time key must be {KEY_SIZE} bytes")
    info = binding.info()
    n2 = os.urandom(NONCE_SIZE)
    ct2 = AESGCM(key).encrypt(n2, _values_json(values), info)
    response_key = os.urandom(KEY_SIZE)
    sealed = SUITE.encrypt(response_key + n2 + ct2, _public_key(binding.worker_key), info)
    envelope: dict[str, object] = {
        "v": VERSION,
        "binding": binding.to_json(),
        "sealed": b64e(sealed),
    }
    return Sealed(envelope, response_key)


def parse_envelope(body: object) -> Envelope:
    """Worker side: the request body's shape, before any key is used."""
    if not isinstance(body, dict) or set(body) != {"v", "binding", "sealed"}:
        raise EnvelopeError("envelope: the body must be {v, binding, sealed}")
    if body["v"] != VERSION or isinstance(body["v"], bool):
        raise EnvelopeError("envelope: unsupported version")
    try:
        sealed = b64d(body["sealed"])
    except ValueError as e:
        raise EnvelopeError("envelope: sealed must be base64url") from e
    return Envelope(Binding.from_json(body["binding"]), sealed)


def open_outer(envelope: Envelope, private_key: X25519PrivateKey) -> Inner:
    """Worker side: open layer 1 with the worker's private key -> (R, n2, ct2)."""
    try:
        plain = SUITE.decrypt(envelope.sealed, private_key, envelope.binding.info())
    except (InvalidTag, ValueError) as e:
        raise EnvelopeError("envelope: layer 1 does not open") from e
    if len(plain) < KEY_SIZE + NONCE_SIZE + _TAG_SIZE:
        raise EnvelopeError("envelope: layer 1 is too short")
    return Inner(
        plain[:KEY_SIZE], plain[KEY_SIZE : KEY_SIZE + NONCE_SIZE], plain[KEY_SIZE + NONCE_SIZE :]
    )


def open_inner(binding: Binding, inner: Inner, key: bytes) -> list[str]:
    """Worker side: open layer 2 with K2 (``key``) -> the values."""
    if len(key) != KEY_SIZE:
        raise EnvelopeError(f"envelope: the one-time key must be {KEY_SIZE} bytes")
    try:
        plain = AESGCM(key).decrypt(inner.nonce, inner.ciphertext, binding.info())
    except InvalidTag as e:
        raise EnvelopeError("envelope: layer 2 does not open") from e
    return _parse_values(plain, "layer 2")


def seal_response(
    binding: Binding,
    response_key: bytes,
    *,
    values: Sequence[str] | None = None,
    error: str | None = None,
) -> dict[str, object]:
    """Worker side: the answer (``values`` or an ``error`` code) sealed to R."""
    if values is not None and error is None:
        plain = _values_json(values)
    elif error is not None and values is None:
        if not _ERROR_CODE.fullmatch(error):
            raise EnvelopeError("envelope: an error code is lowercase snake_case")
        plain = canonical_json({"error": error})
    else:
        raise EnvelopeError("envelope: a response carries values or an error, not both")
    nonce = os.urandom(NONCE_SIZE)
    ct = AESGCM(_response_cipher_key(response_key)).encrypt(
        nonce, plain, binding.info() + RESPONSE_SUFFIX
    )
    return {"v": VERSION, "nonce": b64e(nonce), "ct": b64e(ct)}


def open_response(binding: Binding, response_key: bytes, response: object) -> list[str]:
    """Gateway side: the worker's values, JobRefused(code) for an error, else EnvelopeError."""
    if not isinstance(response, dict) or set(response) != {"v", "nonce", "ct"}:
        raise EnvelopeError("envelope: the response must be {v, nonce, ct}")
    if response["v"] != VERSION or isinstance(response["v"], bool):
        raise EnvelopeError("envelope: unsupported response version")
    try:
        nonce, ct = b64d(response["nonce"]), b64d(response["ct"])
    except ValueError as e:
        raise EnvelopeError("envelope: the response is not base64url") from e
    if len(nonce) != NONCE_SIZE:
        raise EnvelopeError("envelope: the response does not open")
    try:
        plain = AESGCM(_response_cipher_key(response_key)).decrypt(
            nonce, ct, binding.info() + RESPONSE_SUFFIX
        )
    except InvalidTag as e:
        raise EnvelopeError("envelope: the response does not open") from e
    try:
        doc = json.loads(plain)
    except ValueError as e:
        raise EnvelopeError("envelope: the response is not JSON") from e
    if isinstance(doc, dict) and set(doc) == {"error"}:
        code = doc["error"]
        if not isinstance(code, str) or not _ERROR_CODE.fullmatch(code):
            raise EnvelopeError("envelope: the response's error code is malformed")
        raise JobRefused(f"tee: the worker refused the job ({code})", code=code)
    return _parse_values(plain, "the response")


def seal_release(binding: Binding, key: bytes) -> bytes:
    """KMS side: K2 (``key``) sealed to the binding's attested worker key.

    The KMS calls this only after checking that the releasing session's public
    key equals ``binding.worker_key``.
    """
    if len(key) != KEY_SIZE:
        raise EnvelopeError(f"envelope: the one-time key must be {KEY_SIZE} bytes")
    return SUITE.encrypt(key, _public_key(binding.worker_key), binding.release_info())


def open_release(binding: Binding, wrapped: bytes, private_key: X25519PrivateKey) -> bytes:
    """Worker side: K2 from the KMS's release for ``binding``."""
    try:
        key = SUITE.decrypt(wrapped, private_key, binding.release_info())
    except (InvalidTag, ValueError) as e:
        raise EnvelopeError("envelope: the released key does not open") from e
    if len(key) != KEY_SIZE:
        raise EnvelopeError("envelope: the released key has the wrong size")
    return key


def _response_cipher_key(response_key: bytes) -> bytes:
    if len(response_key) != KEY_SIZE:
        raise EnvelopeError(f"envelope: the response key must be {KEY_SIZE} bytes")
    return response_key


__all__ = [
    "SUITE",
    "Binding",
    "Envelope",
    "Inner",
    "Sealed",
    "open_inner",
    "open_outer",
    "open_release",
    "open_response",
    "parse_envelope",
    "seal",
    "seal_release",
    "seal_response",
]
