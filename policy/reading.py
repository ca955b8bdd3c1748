"""Reading a message into the documents field rules select from, and writing it back.

Rules:
- The body is read only when a body rule exists and the body is not empty;
  then its size is checked as received and as decoded (413 above the limit).
- Exactly one Content-Type is needed; a body whose kind no body rule of the
  route reads is refused with 415 (fail closed: a ``form:`` rule must not be
  bypassed by sending the same field as JSON), as is an unknown coding.
- A body, query string or header list is re-encoded only when a rule changed
  it; a changed body is re-encoded with the codings it came with, its
  Content-Length set to the new length and any Transfer-Encoding dropped (the
  body is complete, so Content-Length frames it).
- Errors name ``label`` (the first rule that reads that part of the message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from policy.bodies.encoding import Coding, decode, encode, parse_codings
from policy.bodies.errors import BodyError, Malformed, TooLarge, Unsupported
from policy.bodies.jsondoc import JsonDocument
from policy.bodies.mediatype import BodyKind, body_kind, boundary, parse_media_type
from policy.bodies.multipart import MultipartDocument
from policy.bodies.urlencoded import FormPairs, UrlencodedDocument
from policy.message import (
    BadRequest,
    HeaderList,
    Message,
    MessageError,
    PayloadTooLarge,
    UnsupportedMediaType,
    header_values,
)

type BodyDocument = JsonDocument | UrlencodedDocument | MultipartDocument

_HEADER_VALUE = re.compile(r"^[^\x00\r\n]*$")


class HeaderLines:
    """The header list as a document: select, replace and remove lines by name."""

    def __init__(self, headers: HeaderList) -> None:
        self.lines: list[tuple[str, str] | None] = list(headers)
        self.changed = False

    def select(self, name: str) -> list[tuple[int, object]]:
        """(index, value) of every line called ``name`` (lowercase)."""
        return [(i, ln[1]) for i, ln in enumerate(self.lines) if ln and ln[0].lower() == name]

    def replace(self, index: int, value: str) -> None:
        """Give line ``index`` a new value; raise ValueError if no header can hold it."""
        line = self.lines[index]
        if line is None or not _HEADER_VALUE.match(value):
            raise ValueError("not a header value")
        self.lines[index] = (line[0], value)
        self.changed = True

    def remove(self, index: int) -> None:
        """Drop line ``index``."""
        self.lines[index] = None
        self.changed = True

    def result(self) -> HeaderList:
        """The header list as it now is."""
        return tuple(ln for ln in self.lines if ln is not None)


@dataclass(slots=True)
class Documents:
    """What the rules of one message select from."""

    headers: HeaderLines
    query: FormPairs | None = None
    body: BodyDocument | None = None
    codings: tuple[Coding, ...] = field(default=())


def _error(exc: BodyError, label: str, upstream: bool) -> MessageError:
    text = f"policy: {label}: {exc.reason}"
    if isinstance(exc, TooLarge):
        return PayloadTooLarge(text, upstream=upstream)
    if isinstance(exc, Unsupported):
        return UnsupportedMediaType(text, upstream=upstream)
    return BadRequest(text, upstream=upstream)


def read_query(query: str, label: str, *, upstream: bool) -> FormPairs:
    """The query string as pairs; BadRequest naming ``label`` when it is malformed."""
    try:
        return FormPairs(query)
    except BodyError as e:
        raise _error(e, label, upstream) from e


def read_body(
    message: Message, kinds: frozenset[BodyKind], label: str, *, upstream: bool
) -> tuple[BodyDocument | None, tuple[Coding, ...]]:
    """Decode and parse the body for rules that read ``kinds``; (None, ()) when it is empty."""
    if not message.body:
        return None, ()
    try:
        return _read_body(message, kinds)
    except BodyError as e:
        raise _error(e, label, upstream) from e


def _read_body(
    message: Message, kinds: frozenset[BodyKind]
) -> tuple[BodyDocument, tuple[Coding, ...]]:
    if len(message.body) > message.limit:
        raise TooLarge("body is over the limit")
    types = header_values(message.headers, "content-type")
    if not types:
        raise Unsupported("body has no content-type")
    if len(types) > 1:
        raise Malformed("more than one content-type")
    media = parse_media_type(types[0])
    kind = body_kind(media)
    if kind is None or kind not in kinds:
        raise Unsupported("no rule of this route reads this content type")
    codings = parse_codings(header_values(message.headers, "content-encoding"))
    data, applied = decode(message.body, codings, message.limit)
    if kind == "json":
        return JsonDocument(data), applied
    if kind == "urlencoded":
        return UrlencodedDocument(data), applied
    return MultipartDocument(data, boundary(media)), applied


def body_bytes(doc: BodyDocument) -> bytes:
    """The plain (not content-encoded) body of a changed document."""
    return doc.encode() if isinstance(doc, JsonDocument) else doc.encode_body()


def reframe(headers: HeaderList, length: int) -> HeaderList:
    """``headers`` with one Content-Length of ``length`` and no Transfer-Encoding."""
    drop = {"content-length", "transfer-encoding"}
    kept = tuple((k, v) for k, v in headers if k.lower() not in drop)
    return (*kept, ("Content-Length", str(length)))


def write_body(
    doc: BodyDocument, codings: tuple[Coding, ...], headers: HeaderList
) -> tuple[bytes, HeaderList]:
    """The re-encoded body of a changed document and its reframed headers."""
    body = encode(body_bytes(doc), codings)
    return body, reframe(headers, len(body))
