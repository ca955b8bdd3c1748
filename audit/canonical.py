"""Canonical JSON: the exact bytes every audit hash and signature covers.

Rule (stated once, relied on everywhere):
- UTF-8, object keys sorted by code point, no insignificant whitespace
  (``,`` and ``:`` separators only), non-ASCII characters written as
  themselves, and only the escapes JSON requires (``\\"``, ``\\\\``, and
  control characters below U+0020 as ``\\b \\f \\n \\r \\t`` or ``\\u00xx``).
- Values are strings, integers in ``[-(2**53-1), 2**53-1]``, booleans, null,
  arrays and objects; no floats (their text form is not exact across
  languages) and no strings holding lone surrogates (not encodable as UTF-8).
- Object keys are ASCII, so code-point order equals UTF-16 order.

For this subset the output is exactly RFC 8785 (JCS), so an auditor can
re-derive every hash with any JCS implementation.
"""

from __future__ import annotations

import hashlib
import json

from audit.errors import AuditFormatError

MAX_SAFE_INT = 2**53 - 1

type JsonValue = str | int | bool | list[JsonValue] | dict[str, JsonValue] | None


def canonical_json(value: JsonValue) -> bytes:
    """The canonical bytes of ``value``; raises AuditFormatError outside the subset."""
    _check(value, depth=0)
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise AuditFormatError("audit: string is not encodable as utf-8") from e


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256, the digest form used in entries and checkpoints."""
    return hashlib.sha256(data).hexdigest()


def _check(value: object, *, depth: int) -> None:
    """Refuse anything outside the canonical subset (floats, big ints, odd keys, deep nesting)."""
    if depth > 8:
        raise AuditFormatError("audit: value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise AuditFormatError("audit: integer outside the exact json range")
        return
    if isinstance(value, list):
        for item in value:
            _check(item, depth=depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise AuditFormatError("audit: object keys must be ascii strings")
            _check(item, depth=depth + 1)
        return
    raise AuditFormatError(f"audit: {type(value).__name__} is not allowed in canonical json")
