"""Record encryption: the two AES-256-GCM layers of DESIGN.md, exactly.

Rules (pinned by tests/vault/vectors/):
- ``id = HMAC-SHA256(K_index[t], token)`` over the canonical token text.
- ``inner = AES-256-GCM(HKDF-SHA256(ikm=S, salt=none, info="tokengate/inner/v1" | C), P,
  aad=id)`` where ``C`` is the UTF-8 class name and ``P`` the UTF-8 value.
  Shape-preserving formats have no usable ``S`` in their token: a random
  256-bit data key takes its place and travels inside ``outer``.
- ``outer_key = HKDF-SHA256(ikm=K_tok[v], salt=id, info="tokengate/outer/v1")``
  (through the keyring's ``derive_key``), and ``outer = AES-256-GCM(outer_key,
  body, aad = id | v:u32 | meta)`` with ``body = inner`` or, for a carried data
  key, ``data_key | inner``. A key used for one record only has no nonce-count
  limit.
- Every ciphertext is ``nonce(12) | ciphertext | tag(16)``; nonces come from
  the injected RNG.
- Opening uses exactly the version the record names. Any failure (wrong or
  revoked key, a flipped bit, a record moved to another id, edited metadata)
  raises the one opaque :class:`RecordRefused`; Sealed and key-misuse errors
  from the keyring propagate (the whole call fails closed).
- The convergent secret of deterministic tokens is
  ``HMAC(K_conv[w], len(tenant):u32 | tenant | len(C):u32 | C | P)`` truncated
  to its first 20 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_client.errors import DecryptionError
from kms_client.hkdf import hkdf_sha256
from vault.api import RecordInfo
from vault.errors import VaultError
from vault.keys import PURPOSE_CONVERGENT, PURPOSE_INDEX, PURPOSE_TOKENIZE, VaultKeys
from vault.record import encode_meta
from vault.store import StoredRecord
from vault.tokens import SECRET_BYTES

INNER_INFO = b"tokengate/inner/v1"
OUTER_INFO = b"tokengate/outer/v1"
NONCE_BYTES = 12
DATA_KEY_BYTES = 32
_U32 = struct.Struct(">I")

type Rng = Callable[[int], bytes]


class RecordRefused(VaultError):
    """A record that does not open with this token and key; deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("vault: record refused")


def record_id(keys: VaultKeys, index_version: int, token: str) -> bytes:
    """``HMAC-SHA256(K_index[index_version], token)``; DecryptionError if that key is unusable."""
    return keys.hmac(PURPOSE_INDEX, token.encode(), version=index_version).digest


def convergent_secret(keys: VaultKeys, tenant: str, field_class: str, value: str) -> bytes:
    """``S`` of a deterministic token under the primary convergent key."""
    t, c = tenant.encode(), field_class.encode()
    data = _U32.pack(len(t)) + t + _U32.pack(len(c)) + c + value.encode()
    return keys.hmac(PURPOSE_CONVERGENT, data).digest[:SECRET_BYTES]


def seal(
    keys: VaultKeys,
    rng: Rng,
    *,
    rid: bytes,
    info: RecordInfo,
    value: str,
    secret: bytes | None,
) -> StoredRecord:
    """The record for ``value``; ``secret=None`` carries a fresh data key inside ``outer``."""
    if secret is None:
        secret = carried = rng(DATA_KEY_BYTES)
    else:
        carried = b""
    inner = _encrypt(_inner_key(secret, info.field_class), value.encode(), rid, rng)
    meta = encode_meta(info)
    outer_key = keys.derive_key(PURPOSE_TOKENIZE, salt=rid, info=OUTER_INFO)
    body = carried + inner
    aad = outer_aad(rid, outer_key.version, meta)
    outer = _encrypt(outer_key.key, body, aad, rng)
    return StoredRecord(rid, outer_key.version, outer, meta, info.expires)


def open_record(
    keys: VaultKeys, record: StoredRecord, *, field_class: str, secret: bytes | None
) -> str:
    """The value in ``record`` (``secret=None``: the carried data key); RecordRefused on failure."""
    body = _open_outer(keys, record)
    if secret is None:
        if len(body) < DATA_KEY_BYTES:
            raise RecordRefused
        secret, body = body[:DATA_KEY_BYTES], body[DATA_KEY_BYTES:]
    plain = _decrypt(_inner_key(secret, field_class), body, record.id)
    try:
        return plain.decode()
    except UnicodeDecodeError as e:
        raise RecordRefused from e


def rewrap(keys: VaultKeys, record: StoredRecord, rng: Rng) -> StoredRecord:
    """``record`` with ``outer`` re-encrypted under the primary tokenize key; inner untouched.

    Sees neither the token nor the value: only the outer layer is opened.
    RecordRefused if the record's version cannot open it (revoked, destroyed).
    """
    body = _open_outer(keys, record)
    new_key = keys.derive_key(PURPOSE_TOKENIZE, salt=record.id, info=OUTER_INFO)
    outer = _encrypt(new_key.key, body, outer_aad(record.id, new_key.version, record.meta), rng)
    return StoredRecord(record.id, new_key.version, outer, record.meta, record.expires)


def outer_aad(rid: bytes, version: int, meta: bytes) -> bytes:
    """``id | v:u32 | meta``: what the outer layer authenticates besides its ciphertext."""
    return rid + _U32.pack(version) + meta


def _open_outer(keys: VaultKeys, record: StoredRecord) -> bytes:
    try:
        key = keys.derive_key(
            PURPOSE_TOKENIZE, salt=record.id, info=OUTER_INFO, version=record.key_version
        )
    except DecryptionError as e:
        raise RecordRefused from e
    aad = outer_aad(record.id, record.key_version, record.meta)
    return _decrypt(key.key, record.outer, aad)


def _inner_key(secret: bytes, field_class: str) -> bytes:
    return hkdf_sha256(secret, salt=None, info=INNER_INFO + field_class.encode())


def _encrypt(key: bytes, plaintext: bytes, aad: bytes, rng: Rng) -> bytes:
    nonce = rng(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    if len(ciphertext) < NONCE_BYTES + 16:
        raise RecordRefused
    try:
        return AESGCM(key).decrypt(ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], aad)
    except InvalidTag as e:
        raise RecordRefused from e
