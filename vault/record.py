"""The canonical metadata of a vault record: one byte string per metadata, bound in the outer AAD.

Rules (DESIGN.md, "Tokens and the vault record"; checked by the known-answer
vectors in tests/vault/vectors/):
- ``meta = version || field*``: one record-version byte (:data:`RECORD_VERSION`),
  then the six fields ``class created expires format owner tenant`` in sorted
  key order, each as ``len(key):u8 key tag:u8 len(value):u32 value``.
- Tags: ``0`` null (empty value), ``1`` UTF-8 text, ``2`` signed 64-bit
  big-endian integer (8 bytes). ``class``, ``format`` and ``tenant`` are text,
  ``owner`` text or null, ``created`` an integer, ``expires`` an integer or null.
- Decoding is strict: an unknown version byte, a missing, extra or unsorted
  field, a wrong tag or trailing bytes is refused. So every metadata has
  exactly one encoding, and editing any byte of it (owner, tenant, expiry)
  breaks the outer AEAD that binds it.
- Every change to the record or token layout bumps :data:`RECORD_VERSION`.
"""

from __future__ import annotations

import struct

from vault.api import RecordInfo

RECORD_VERSION = 1

_NULL, _TEXT, _INT = 0, 1, 2
_I64 = struct.Struct(">q")
_LEN = struct.Struct(">I")  # value lengths


def _head(key: str) -> bytes:
    return bytes([len(key)]) + key.encode()


# Every field starts with the same bytes in every record: len(key) key.
_CLASS, _CREATED, _EXPIRES = _head("class"), _head("created"), _head("expires")
_FORMAT, _OWNER, _TENANT = _head("format"), _head("owner"), _head("tenant")
_NULL_TAIL = bytes([_NULL]) + _LEN.pack(0)  # tag 0, empty value
_INT_TAG = bytes([_INT]) + _LEN.pack(_I64.size)
_TEXT_TAG = bytes([_TEXT])

type _Frame = tuple[int, int, int]  # tag, value start, value end


class MetaError(ValueError):
    """Metadata bytes that are not a canonical encoding (the record is refused)."""


def encode_meta(info: RecordInfo) -> bytes:
    """The canonical bytes of ``info`` (its ``record_version`` is the leading byte)."""
    if not 0 < info.record_version < 256:
        raise MetaError("vault: record version out of range")
    return b"".join(
        (
            bytes([info.record_version]),
            _put_text(_CLASS, "class", info.field_class),
            _put_int(_CREATED, "created", info.created),
            _EXPIRES + _NULL_TAIL
            if info.expires is None
            else _put_int(_EXPIRES, "expires", info.expires),
            _put_text(_FORMAT, "format", info.format),
            _OWNER + _NULL_TAIL if info.owner is None else _put_text(_OWNER, "owner", info.owner),
            _put_text(_TENANT, "tenant", info.tenant),
        )
    )


def decode_meta(meta: bytes) -> RecordInfo:
    """Parse canonical metadata; :class:`MetaError` on anything else."""
    if not meta or meta[0] != RECORD_VERSION:
        raise MetaError("vault: unknown record version")
    f = _frame(meta, 1, _CLASS)
    field_class = _text(meta, f, "class")
    f = _frame(meta, f[2], _CREATED)
    created = _int(meta, f, "created")
    f = _frame(meta, f[2], _EXPIRES)
    expires = None if _is_null(f) else _int(meta, f, "expires")
    f = _frame(meta, f[2], _FORMAT)
    fmt = _text(meta, f, "format")
    f = _frame(meta, f[2], _OWNER)
    owner = None if _is_null(f) else _text(meta, f, "owner")
    f = _frame(meta, f[2], _TENANT)
    tenant = _text(meta, f, "tenant")
    if f[2] != len(meta):
        raise MetaError("vault: trailing bytes after record metadata")
    return RecordInfo(field_class, fmt, owner, tenant, created, expires, RECORD_VERSION)


def _put_text(head: bytes, key: str, value: str | None) -> bytes:
    if value is None:
        raise MetaError(f"vault: metadata field '{key}' cannot be empty")
    if not isinstance(value, str):
        raise MetaError(f"vault: metadata field '{key}' must be text")
    body = value.encode()
    return head + _TEXT_TAG + _LEN.pack(len(body)) + body


def _put_int(head: bytes, key: str, value: int | None) -> bytes:
    if value is None:
        raise MetaError(f"vault: metadata field '{key}' cannot be empty")
    if not isinstance(value, int):
        raise MetaError(f"vault: metadata field '{key}' must be an integer")
    if not -(2**63) <= value < 2**63:
        raise MetaError(f"vault: metadata field '{key}' out of range")
    return head + _INT_TAG + _I64.pack(value)


def _frame(meta: bytes, at: int, head: bytes) -> _Frame:
    """The field ``head`` names at offset ``at``: its tag and where its value lies."""
    if not meta.startswith(head, at):
        raise MetaError("vault: record metadata fields missing or out of order")
    start = at + len(head) + 5  # tag:u8 len:u32
    if start > len(meta):
        raise MetaError("vault: record metadata truncated")
    end = start + int.from_bytes(meta[start - 4 : start], "big")
    if end > len(meta):
        raise MetaError("vault: record metadata truncated")
    return meta[start - 5], start, end


def _is_null(f: _Frame) -> bool:
    return f[0] == _NULL and f[1] == f[2]


def _text(meta: bytes, f: _Frame, key: str) -> str:
    if f[0] != _TEXT:
        raise MetaError(f"vault: record metadata field '{key}' has the wrong type")
    try:
        return meta[f[1] : f[2]].decode()
    except UnicodeDecodeError as e:
        raise MetaError("vault: record metadata text is not utf-8") from e


def _int(meta: bytes, f: _Frame, key: str) -> int:
    if f[0] != _INT or f[2] - f[1] != _I64.size:
        raise MetaError(f"vault: record metadata field '{key}' has the wrong type")
    return int.from_bytes(meta[f[1] : f[2]], "big", signed=True)
