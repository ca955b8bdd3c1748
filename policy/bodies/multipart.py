"""``multipart/form-data`` bodies (RFC 7578): fields transformed, files untouched.

Rules:
- The body is cut at its delimiters into preamble, parts and the closing
  delimiter with the epilogue; rebuilt from the same bytes, so a body no rule
  changed is returned byte-identical and the boundary never changes.
- A part with ``filename`` (or ``filename*``) is a file: its bytes are never
  decoded or altered, and a rule that names it fails (rules read fields).
- Every part needs ``Content-Disposition: form-data; name="..."``. A quoted
  parameter with a backslash, ``name*``, a repeated parameter or header, a header without a
  colon or a folded header is Malformed: those are where parsers disagree,
  and a disagreement would let a field past its rule.
- A field a rule reads must be UTF-8 and carry no Content-Transfer-Encoding
  or Content-Length header (the gateway could not keep them true).
- A field a rule removes is dropped with its delimiter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from policy.bodies.errors import Malformed

_PARAM = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("[^"\r\n]*"|[^;\s"]+)\s*')
_HEADER = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")
_FRAGILE = ("content-transfer-encoding", "content-length")


class FilePart:
    """What selecting a file part yields: a marker, never the file's bytes."""

    __slots__ = ()


FILE = FilePart()


@dataclass(slots=True)
class _Part:
    lead: bytes  # the delimiter line before this part (CRLF--boundary...CRLF)
    head: bytes  # header block including the blank line that ends it
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    removed: bool = False


class MultipartDocument:
    """A multipart/form-data body cut into its parts."""

    def __init__(self, body: bytes, boundary: bytes) -> None:
        self.changed = False
        dash = b"--" + boundary
        if body.startswith(dash):
            start = 0
        else:
            found = body.find(b"\r\n" + dash)
            if found < 0:
                raise Malformed("multipart body has no delimiter")
            start = found + 2
        self._preamble = body[:start]
        self._parts: list[_Part] = []
        pos = start
        while True:
            after = pos + (len(dash) if pos == start else len(dash) + 2)
            if body.startswith(b"--", after):
                self._tail = body[pos:]
                return
            eol = body.find(b"\r\n", after)
            if eol < 0 or body[after:eol].strip(b" \t"):
                raise Malformed("multipart delimiter line is malformed")
            nxt = body.find(b"\r\n" + dash, eol + 2)
            if nxt < 0:
                raise Malformed("multipart body has no closing delimiter")
            self._parts.append(_part(body[pos : eol + 2], body[eol + 2 : nxt]))
            pos = nxt

    def select(self, name: str) -> list[tuple[int, object]]:
        """(index, value) of every part called ``name``; files yield :data:`FILE`."""
        out: list[tuple[int, object]] = []
        for i, part in enumerate(self._parts):
            if part.name != name or part.removed:
                continue
            out.append((i, FILE if part.is_file else _field_value(part)))
        return out

    def replace(self, index: int, value: str) -> None:
        """Give field ``index`` a new value."""
        self._parts[index].body = value.encode("utf-8")
        self.changed = True

    def remove(self, index: int) -> None:
        """Drop field ``index`` with its delimiter."""
        self._parts[index].removed = True
        self.changed = True

    def encode_body(self) -> bytes:
        """The body as it now is."""
        kept = (p.lead + p.head + p.body for p in self._parts if not p.removed)
        return self._preamble + b"".join(kept) + self._tail


def _part(lead: bytes, content: bytes) -> _Part:
    if content.startswith(b"\r\n"):
        head, body = b"\r\n", content[2:]
    else:
        end = content.find(b"\r\n\r\n")
        if end < 0:
            raise Malformed("multipart part has no end of headers")
        head, body = content[: end + 4], content[end + 4 :]
    part = _Part(lead, head, body, headers=_headers(head))
    _disposition(part)
    return part


def _headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[:-2] if head != b"\r\n" else ():
        m = _HEADER.match(line)
        if not m:
            raise Malformed("multipart part header is malformed")
        name = m.group(1).decode("ascii").lower()
        if name in headers:
            raise Malformed("multipart part repeats a header")
        try:
            headers[name] = m.group(2).decode("utf-8")
        except UnicodeDecodeError as e:
            raise Malformed("multipart part header is not utf-8") from e
    return headers


def _disposition(part: _Part) -> None:
    value = part.headers.get("content-disposition")
    if value is None:
        raise Malformed("multipart part has no content-disposition")
    kind, _, rest = value.partition(";")
    if kind.strip().lower() != "form-data":
        raise Malformed("multipart part is not form-data")
    params: dict[str, str] = {}
    pos = 0
    rest = ";" + rest if rest else ""
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m:
            raise Malformed("multipart content-disposition is malformed")
        key, raw = m.group(1).lower(), m.group(2)
        if key in params or key == "name*" or "\\" in raw:
            raise Malformed("multipart content-disposition is ambiguous")
        params[key] = raw[1:-1] if raw.startswith('"') else raw
        pos = m.end()
    if not params.get("name"):
        raise Malformed("multipart part has no name")
    part.name = params["name"]
    part.is_file = "filename" in params or "filename*" in params


def _field_value(part: _Part) -> str:
    if any(h in part.headers for h in _FRAGILE):
        raise Malformed("multipart field has a transfer header the gateway cannot keep true")
    try:
        return part.body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Malformed("multipart field is not utf-8") from e
