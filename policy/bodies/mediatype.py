"""Content-Type parsing (RFC 9110 section 8.3) and the body kinds field rules read.

Rules:
- Type, subtype and parameter names are case-insensitive; a parameter given
  twice is malformed (two boundaries or two charsets are an ambiguity a
  backend might resolve differently).
- JSON is ``application/json`` or ``application/*+json``; forms are
  ``application/x-www-form-urlencoded`` and ``multipart/form-data`` (which
  needs a valid ``boundary``). JSON and urlencoded bodies must be UTF-8: any
  other declared charset is unsupported rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from policy.bodies.errors import Malformed, Unsupported

type BodyKind = Literal["json", "urlencoded", "multipart"]

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - RFC 9110 token, not a secret
_TYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*")
_PARAM = re.compile(rf';\s*({_TOKEN})=({_TOKEN}|"(?:[^"\\\r\n]|\\.)*")\s*')
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]$")
_UTF8 = frozenset({"utf-8", "utf8"})


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed Content-Type: lowercased type and subtype, parameters by lowercased name."""

    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def essence(self) -> str:
        """``type/subtype``."""
        return f"{self.type}/{self.subtype}"


def parse_media_type(text: str) -> MediaType:
    """Parse a Content-Type header value; raise Malformed when it is not one."""
    m = _TYPE.match(text)
    if not m:
        raise Malformed("content-type is malformed")
    params: dict[str, str] = {}
    pos = m.end()
    while pos < len(text):
        p = _PARAM.match(text, pos)
        if not p:
            raise Malformed("content-type is malformed")
        name, value = p.group(1).lower(), p.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name in params:
            raise Malformed(f"content-type repeats the {name} parameter")
        params[name] = value
        pos = p.end()
    return MediaType(m.group(1).lower(), m.group(2).lower(), params)


def body_kind(media: MediaType) -> BodyKind | None:
    """The kind of body field rules can read, or None when no codec reads it."""
    if media.essence == "application/json" or (
        media.type == "application" and media.subtype.endswith("+json")
    ):
        _require_utf8(media)
        return "json"
    if media.essence == "application/x-www-form-urlencoded":
        _require_utf8(media)
        return "urlencoded"
    if media.essence == "multipart/form-data":
        boundary(media)
        return "multipart"
    return None


def boundary(media: MediaType) -> bytes:
    """The multipart boundary (RFC 2046 bchars, 1-70 characters, no trailing space)."""
    value = media.params.get("boundary")
    if value is None or not _BOUNDARY.match(value):
        raise Malformed("multipart boundary is missing or invalid")
    return value.encode("ascii")


def _require_utf8(media: MediaType) -> None:
    charset = media.params.get("charset")
    if charset is not None and charset.lower() not in _UTF8:
        raise Unsupported("charset is not supported; use utf-8")
