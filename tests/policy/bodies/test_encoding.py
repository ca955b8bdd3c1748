"""Content codings: round trips, limits on decoded size (bombs), corrupt data."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.bodies.encoding import Coding, CodingName, decode, encode, parse_codings
from policy.bodies.errors import Malformed, TooLarge, Unsupported

PLAIN = b'{"ssn": "123-45-6789", "note": "' + b"x" * 5000 + b'"}'


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("values", "codings"),
    [
        ([], ()),
        (["identity"], ()),
        (["gzip"], ("gzip",)),
        (["x-gzip"], ("gzip",)),
        (["GZIP"], ("gzip",)),
        (["deflate, br"], ("deflate", "br")),
        (["deflate", "br"], ("deflate", "br")),
        (["gzip, identity ,"], ("gzip",)),
    ],
)
def test_parse_codings(values: list[str], codings: tuple[str, ...]) -> None:
    assert parse_codings(values) == codings


@pytest.mark.parametrize("value", ["zstd", "compress", "gzip, zstd", "aes128gcm"])
def test_unknown_coding_is_unsupported(value: str) -> None:
    with pytest.raises(Unsupported):
        parse_codings([value])


@pytest.mark.parametrize(
    ("encoded", "codings", "applied"),
    [
        (gzip.compress(PLAIN, mtime=0), ("gzip",), (Coding("gzip"),)),
        (zlib.compress(PLAIN), ("deflate",), (Coding("deflate"),)),
        (raw_deflate(PLAIN), ("deflate",), (Coding("deflate", raw=True),)),
        (brotli.compress(PLAIN), ("br",), (Coding("br"),)),
        (
            brotli.compress(gzip.compress(PLAIN, mtime=0)),
            ("gzip", "br"),
            (Coding("gzip"), Coding("br")),
        ),
        (
            gzip.compress(PLAIN[:100], mtime=0) + gzip.compress(PLAIN[100:], mtime=0),
            ("gzip",),
            (Coding("gzip"),),
        ),
        (PLAIN, (), ()),
    ],
)
def test_decode_and_encode_round_trip(
    encoded: bytes, codings: tuple[CodingName, ...], applied: tuple[Coding, ...]
) -> None:
    data, got = decode(encoded, codings, len(PLAIN))
    assert data == PLAIN
    assert got == applied
    again, applied_again = decode(encode(data, got), codings, len(PLAIN))
    assert again == PLAIN
    assert applied_again == applied


@pytest.mark.parametrize(
    ("make", "coding"),
    [
        (gzip.compress, "gzip"),
        (zlib.compress, "deflate"),
        (raw_deflate, "deflate"),
        (brotli.compress, "br"),
    ],
)
def test_decompression_bomb_is_too_large(
    make: Callable[[bytes], bytes], coding: CodingName
) -> None:
    bomb = make(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge):
        decode(bomb, (coding,), 64 * 1024)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_exactly_at_the_limit_passes_and_one_over_fails(coding: CodingName) -> None:
    body = encode(PLAIN, (Coding(coding),))
    assert decode(body, (coding,), len(PLAIN))[0] == PLAIN
    with pytest.raises(TooLarge):
        decode(body, (coding,), len(PLAIN) - 1)


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (gzip.compress(PLAIN, mtime=0)[:-10], "gzip"),
        (gzip.compress(PLAIN, mtime=0)[:30], "gzip"),
        (gzip.compress(PLAIN, mtime=0) + b"junk", "gzip"),
        (b"not gzip at all", "gzip"),
        (zlib.compress(PLAIN)[:-3], "deflate"),
        (zlib.compress(PLAIN) + b"junk", "deflate"),
        (brotli.compress(PLAIN)[:-3], "br"),
        (brotli.compress(PLAIN) + b"junk", "br"),
        (b"\xff\xff\xff\xff", "br"),
    ],
)
def test_corrupt_or_truncated_is_malformed(body: bytes, coding: CodingName) -> None:
    with pytest.raises(Malformed):
        decode(body, (coding,), 1024 * 1024)


@given(st.binary(max_size=2000), st.sampled_from(["gzip", "deflate", "br"]))
def test_any_bytes_round_trip(data: bytes, coding: CodingName) -> None:
    for raw in (False, True) if coding == "deflate" else (False,):
        encoded = encode(data, (Coding(coding, raw),))
        assert decode(encoded, (coding,), len(data))[0] == data
