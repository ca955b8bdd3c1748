"""Tagged (opaque, deterministic) and uuid token layouts."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.tokens import (
    IndexVersionError,
    parse_tagged,
    parse_uuid,
    tagged_token,
    uuid_token,
    valid_prefix,
)

SECRET = bytes(range(20))


@given(
    prefix=st.from_regex(r"[a-z][a-z0-9-]{0,31}", fullmatch=True),
    version=st.integers(1, 32),
    secret=st.binary(min_size=20, max_size=20),
)
def test_tagged_round_trip(prefix: str, version: int, secret: bytes) -> None:
    token = tagged_token(prefix, version, secret)
    assert token == token.lower()
    assert len(token) == len(prefix) + 1 + 1 + 32
    parsed = parse_tagged(prefix, token)
    assert parsed is not None
    assert (parsed.text, parsed.secret, parsed.index_version) == (token, secret, version)


@pytest.mark.parametrize(("version", "char"), [(1, "a"), (2, "b"), (26, "z"), (27, "2"), (32, "7")])
def test_index_version_character(version: int, char: str) -> None:
    assert tagged_token("tok", version, SECRET)[4] == char


def test_known_layout() -> None:
    assert (
        tagged_token("tok", 1, SECRET) == "tok_a" + "aaaqeayeaudaocajbifqydiob4ibceqt"
    )  # RFC 4648 base32 of 00..13


@pytest.mark.parametrize("version", [0, 33, 1000])
def test_index_versions_that_cannot_be_named_are_refused(version: int) -> None:
    with pytest.raises(IndexVersionError, match="cannot be named"):
        tagged_token("tok", version, SECRET)


@pytest.mark.parametrize("prefix", ["tok", "ssn", "a", "card-2", "x" * 32])
def test_valid_prefixes(prefix: str) -> None:
    assert valid_prefix(prefix)


@pytest.mark.parametrize("prefix", ["", "Tok", "1tok", "tok_x", "t k", "x" * 33, "tök"])
def test_invalid_prefixes(prefix: str) -> None:
    assert not valid_prefix(prefix)


GOOD = tagged_token("tok", 3, SECRET)


@pytest.mark.parametrize(
    "token",
    [
        "",
        GOOD.upper(),
        GOOD[:-1],
        GOOD + "a",
        "tak" + GOOD[3:],
        GOOD.replace("tok_", "tok-"),
        GOOD[:-1] + "1",  # 1 is not base32
        GOOD[:-1] + "8",
        "other_" + GOOD[4:],
        GOOD[:5] + "é" + GOOD[6:],
    ],
)
def test_malformed_tagged_tokens(token: str) -> None:
    assert parse_tagged("tok", token) is None


@given(st.binary(min_size=16, max_size=16))
def test_uuid_tokens_are_v4(random16: bytes) -> None:
    token, secret = uuid_token(random16)
    u = uuid.UUID(token)
    assert (u.version, u.variant) == (4, uuid.RFC_4122)
    assert str(u) == token
    assert secret == u.bytes
    # 122 bits come from the RNG: everything but the version nibble and variant bits
    mask = bytearray(b"\xff" * 16)
    mask[6], mask[8] = 0x0F, 0x3F
    assert bytes(a & m for a, m in zip(secret, mask, strict=True)) == bytes(
        a & m for a, m in zip(random16, mask, strict=True)
    )
    parsed = parse_uuid(token.upper(), 7)
    assert parsed is not None
    assert (parsed.text, parsed.secret, parsed.index_version) == (token, secret, 7)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # v1
        "6ba7b810-9dad-41d1-c0b4-00c04fd430c8",  # wrong variant
        "6ba7b8109dad41d180b400c04fd430c8",  # no hyphens
        "{6ba7b810-9dad-41d1-80b4-00c04fd430c8}",
        "6ba7b810-9dad-41d1-80b4-00c04fd430c",
    ],
)
def test_malformed_uuid_tokens(token: str) -> None:
    assert parse_uuid(token, 1) is None


def test_uuid_needs_16_bytes() -> None:
    with pytest.raises(ValueError, match="16 random bytes"):
        uuid_token(b"\x00" * 15)


@given(secret=st.binary(min_size=20, max_size=20), version=st.integers(1, 32))
def test_tagged_body_is_rfc4648_base32(secret: bytes, version: int) -> None:
    """The C-speed reader and writer agree with the base64 module, byte for byte."""
    token = tagged_token("tok", version, secret)
    assert token[5:] == base64.b32encode(secret).decode().lower()
    parsed = parse_tagged("tok", token)
    assert parsed is not None
    assert parsed.secret == base64.b32decode(token[5:].upper())


@pytest.mark.parametrize(
    "rest",
    [
        "a" + "a_" * 16,  # int() would skip underscores
        "a " + "a" * 31,  # and surrounding whitespace
        "a" + "a" * 31 + "\n",
        "a" + "A" * 32,
        "a0" + "a" * 31,  # digits of int's base 32 that base32 does not use
        "a" + "a" * 31 + "9",
        "a" + "+" + "a" * 31,  # int() accepts a sign
    ],
)
def test_tagged_bodies_int_would_read_are_still_malformed(rest: str) -> None:
    assert parse_tagged("tok", "tok_" + rest) is None


@pytest.mark.parametrize("text", ["", "tok", "tok_", "to_" + "a" * 34, "tokx" + "a" * 33])
def test_short_and_misplaced_tagged_tokens(text: str) -> None:
    assert parse_tagged("tok", text) is None
