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
_FIELDS = ("class", "created", "expires", "format", "owner", "tenant")
_NULLABLE = frozenset({"expires", "owner"})
_INTEGER = frozenset({"created", "expires"})
_I64 = struct.Struct(">q")
_LEN = struct.Struct(">I")  # value lengths

type _Value = str | int | None


class MetaError(ValueError):
    """Metadata bytes that are not a canonical encoding (the record is refused)."""


def encode_meta(info: RecordInfo) -> bytes:
    """The canonical bytes of ``info`` (its ``record_version`` is the leading byte)."""
    if not 0 < info.record_version < 256:
        raise MetaError("vault: record version out of range")
    values: dict[str, _Value] = {
        "class": info.field_class,
        "created": info.created,
        "expires": info.expires,
        "format": info.format,
        "owner": info.owner,
        "tenant": info.tenant,
    }
    out = bytearray([info.record_version])
    for key in _FIELDS:
        out += _field(key, values[key])
    return bytes(out)


def decode_meta(meta: bytes) -> RecordInfo:
    """Parse canonical metadata; :class:`MetaError` on anything else."""
    if not meta or meta[0] != RECORD_VERSION:
        raise MetaError("vault: unknown record version")
    values: dict[str, _Value] = {}
    at = 1
    for key in _FIELDS:
        at = _read_field(meta, at, key, values)
    if at != len(meta):
        raise MetaError("vault: trailing bytes after record metadata")
    return RecordInfo(
        field_class=_text(values["class"]),
        format=_text(values["format"]),
        owner=None if values["owner"] is None else _text(values["owner"]),
        tenant=_text(values["tenant"]),
        created=_integer(values["created"]),
        expires=None if values["expires"] is None else _integer(values["expires"]),
        record_version=meta[0],
    )


def _field(key: str, value: _Value) -> bytes:
    name = key.encode()
    if value is None:
        if key not in _NULLABLE:
            raise MetaError(f"vault: metadata field '{key}' cannot be empty")
        tag, body = _NULL, b""
    elif key in _INTEGER:
        if not isinstance(value, int):
            raise MetaError(f"vault: metadata field '{key}' must be an integer")
        if not -(2**63) <= value < 2**63:
            raise MetaError(f"vault: metadata field '{key}' out of range")
        tag, body = _INT, _I64.pack(value)
    else:
        if not isinstance(value, str):
            raise MetaError(f"vault: metadata field '{key}' must be text")
        tag, body = _TEXT, value.encode()
    return bytes([len(name)]) + name + bytes([tag]) + _LEN.pack(len(body)) + body


def _read_field(meta: bytes, at: int, key: str, values: dict[str, _Value]) -> int:
    name = key.encode()
    end = at + 1 + len(name)
    if meta[at : at + 1] != bytes([len(name)]) or meta[at + 1 : end] != name:
        raise MetaError("vault: record metadata fields missing or out of order")
    head = meta[end : end + 5]
    if len(head) != 5:
        raise MetaError("vault: record metadata truncated")
    tag, size = head[0], int.from_bytes(head[1:], "big")
    body = meta[end + 5 : end + 5 + size]
    if len(body) != size:
        raise MetaError("vault: record metadata truncated")
    values[key] = _value(key, tag, body)
    return end + 5 + size


def _value(key: str, tag: int, body: bytes) -> _Value:
    if tag == _NULL and key in _NULLABLE and not body:
        return None
    if tag == _INT and key in _INTEGER and len(body) == _I64.size:
        return int.from_bytes(body, "big", signed=True)
    if tag == _TEXT and key not in _INTEGER:
        try:
            return body.decode()
        except UnicodeDecodeError as e:
            raise MetaError("vault: record metadata text is not utf-8") from e
    raise MetaError(f"vault: record metadata field '{key}' has the wrong type")


def _text(value: _Value) -> str:
    if not isinstance(value, str):  # excluded by _value
        raise MetaError("vault: record metadata text expected")
    return value


def _integer(value: _Value) -> int:
    if not isinstance(value, int):  # excluded by _value
        raise MetaError("vault: record metadata integer expected")
    return value
