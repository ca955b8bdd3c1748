"""The TEE protocol's spellings of bytes and JSON (docs/tee-protocol.md).

- Byte strings travel as base64url without padding; decoding is strict (one
  spelling per value: no padding, no stray characters, no non-zero trailing
  bits), so a value that is bound into a signature or an HPKE ``info`` cannot
  be respelled.
- Canonical JSON is sorted keys, no spaces, UTF-8 (non-ASCII characters as
  themselves, not ``\\u`` escapes).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data: bytes) -> str:
    """``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: object) -> bytes:
    """Strictly decode base64url without padding; ValueError for anything else."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError("not base64url without padding") from e
    if b64e(data) != text:  # non-zero trailing bits: a second spelling of the same bytes
        raise ValueError("not base64url in canonical form")
    return data


def canonical_json(doc: Mapping[str, object]) -> bytes:
    """``doc`` as canonical JSON bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
