"""Content-Encoding: decode gzip / deflate / br under a size limit, re-encode the same way.

Rules:
- Codings apply in header order, so they are undone in reverse; ``identity``
  is skipped; any other coding is unsupported (never passed on unread when a
  rule must read the body).
- Every decoding step stops as soon as its output passes the limit: a
  decompression bomb costs at most ``limit`` bytes of memory and is TooLarge.
- Truncated or corrupt data, and bytes after the end of a stream, are Malformed.
- ``deflate`` is read in both forms seen in the wild (zlib-wrapped as RFC 9110
  says, and raw) and written back in the form it came in; a multi-member gzip
  body is written back as one member.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import brotli  # type: ignore[import-untyped]  # ships no type hints

from policy.bodies.errors import Malformed, TooLarge, Unsupported

type CodingName = Literal["gzip", "deflate", "br"]

_NAMES: dict[str, CodingName] = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate", "br": "br"}


@dataclass(frozen=True, slots=True)
class Coding:
    """One applied content coding; ``raw`` marks deflate without the zlib wrapper."""

    name: CodingName
    raw: bool = False


def parse_codings(values: Iterable[str]) -> tuple[CodingName, ...]:
    """Content-Encoding header values (in order) -> the codings applied, first to last."""
    out: list[CodingName] = []
    for value in values:
        for token in value.split(","):
            name = token.strip().lower()
            if name in ("", "identity"):
                continue
            if name not in _NAMES:
                raise Unsupported("content-encoding is not supported")
            out.append(_NAMES[name])
    return tuple(out)


def decode(
    body: bytes, codings: tuple[CodingName, ...], limit: int
) -> tuple[bytes, tuple[Coding, ...]]:
    """Undo ``codings``; returns the plain bytes and the codings to re-apply."""
    applied: list[Coding] = []
    data = body
    for name in reversed(codings):
        if name == "br":
            data, coding = _unbrotli(data, limit), Coding("br")
        elif name == "gzip":
            data, coding = _inflate_gzip(data, limit), Coding("gzip")
        else:
            data, coding = _inflate_deflate(data, limit)
        applied.append(coding)
    applied.reverse()
    return data, tuple(applied)


def encode(data: bytes, codings: tuple[Coding, ...]) -> bytes:
    """Apply ``codings`` (first to last) to ``data``."""
    for coding in codings:
        if coding.name == "br":
            data = bytes(brotli.compress(data))
        else:
            wbits = 31 if coding.name == "gzip" else (-15 if coding.raw else 15)
            c = zlib.compressobj(6, zlib.DEFLATED, wbits)
            data = c.compress(data) + c.flush()
    return data


def _is_zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def _inflate_gzip(data: bytes, limit: int) -> bytes:
    out = bytearray()
    rest = data
    while True:  # one pass per gzip member
        d = zlib.decompressobj(31)
        out += _drain(d, rest, limit - len(out))
        rest = d.unused_data
        if not rest:
            return bytes(out)


def _inflate_deflate(data: bytes, limit: int) -> tuple[bytes, Coding]:
    if _is_zlib_header(data):
        # A raw stream can start with two bytes that look like a zlib header.
        with contextlib.suppress(Malformed):
            return _inflate(data, 15, limit), Coding("deflate")
    return _inflate(data, -15, limit), Coding("deflate", raw=True)


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = _drain(d, data, limit)
    if d.unused_data:
        raise Malformed("data after the end of the deflate stream")
    return out


def _drain(d: zlib._Decompress, data: bytes, room: int) -> bytes:
    """Decompress one stream, never producing more than ``room`` + 1 bytes."""
    out = bytearray()
    pending = data
    try:
        while True:
            # max_length >= 1 always (0 would mean unlimited).
            out += d.decompress(pending, room + 1 - len(out))
            if len(out) > room:
                raise TooLarge("decoded body is over the limit")
            if d.eof:
                return bytes(out)
            pending = d.unconsumed_tail
            if not pending:
                raise Malformed("compressed body is truncated")
    except zlib.error as e:
        raise Malformed("compressed body is corrupt") from e


def _unbrotli(data: bytes, limit: int) -> bytes:
    d = brotli.Decompressor()
    out = bytearray()  # brotli is untyped: every result goes through bytearray
    try:
        out += d.process(data, output_buffer_limit=limit + 1)
        while len(out) <= limit and not d.is_finished() and not d.can_accept_more_data():
            out += d.process(b"", output_buffer_limit=limit + 1 - len(out))
    except brotli.error as e:
        raise Malformed("compressed body is corrupt") from e
    if len(out) > limit:
        raise TooLarge("decoded body is over the limit")
    if not d.is_finished():
        raise Malformed("compressed body is truncated")
    return bytes(out)
