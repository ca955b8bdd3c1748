"""Shape-preserving tokens: shape, kept digits, Luhn-invalid cards, never-valid SSNs."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vault.support import StreamRng
from vault.api import FormatKind, TokenFormat
from vault.errors import VaultConfigError
from vault.formats import (
    MIN_RANDOM_DIGITS,
    check_shaped,
    fits,
    looks_shaped,
    luhn_ok,
    luhn_options,
    shaped_token,
)

PAN = TokenFormat(FormatKind.PAN)
SSN = TokenFormat(FormatKind.SSN)
NUMERIC = TokenFormat(FormatKind.NUMERIC)


def digits_of(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def grouped(min_digits: int, max_digits: int) -> st.SearchStrategy[str]:
    """Digit strings with single spaces or hyphens between groups."""
    groups = st.lists(st.text("0123456789", min_size=1, max_size=6), min_size=1, max_size=6)

    def join(parts: list[str], seps: list[str]) -> str:
        out = parts[0]
        for part, sep in zip(parts[1:], seps, strict=False):
            out += sep + part
        return out

    return (
        st.tuples(groups, st.lists(st.sampled_from([" ", "-"]), min_size=5, max_size=5))
        .map(lambda t: join(t[0], t[1]))
        .filter(lambda s: min_digits <= len(digits_of(s)) <= max_digits)
    )


def same_shape(value: str, token: str) -> bool:
    return len(value) == len(token) and all(
        a.isdigit() == b.isdigit() and (a.isdigit() or a == b)
        for a, b in zip(value, token, strict=True)
    )


@given(
    value=grouped(12, 19),
    keep_first=st.integers(0, 6),
    keep_last=st.integers(0, 4),
    seed=st.binary(),
)
def test_pan_tokens_keep_shape_and_digits_and_fail_luhn(
    value: str, keep_first: int, keep_last: int, seed: bytes
) -> None:
    fmt = TokenFormat(FormatKind.PAN, keep_first=keep_first, keep_last=keep_last)
    if not fits(value, fmt):
        assert len(digits_of(value)) - keep_first - keep_last < MIN_RANDOM_DIGITS
        return
    token = shaped_token(value, fmt, StreamRng(seed))
    assert same_shape(value, token)
    dv, dt = digits_of(value), digits_of(token)
    assert dt[:keep_first] == dv[:keep_first]
    assert dt[len(dt) - keep_last :] == dv[len(dv) - keep_last :]
    assert not luhn_ok(dt)
    assert token != value
    assert looks_shaped(token, fmt)


@given(value=grouped(12, 19), seed=st.binary())
def test_pan_tokens_pass_luhn_only_when_opted_in(value: str, seed: bytes) -> None:
    fmt = TokenFormat(FormatKind.PAN, keep_first=6, keep_last=2, luhn_valid=True)
    if fits(value, fmt):
        assert luhn_ok(digits_of(shaped_token(value, fmt, StreamRng(seed))))


@given(
    value=st.from_regex(r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{9}", fullmatch=True),
    keep_first=st.integers(0, 3),
    keep_last=st.integers(0, 4),
    seed=st.binary(),
)
def test_ssn_tokens_are_never_valid_looking(
    value: str, keep_first: int, keep_last: int, seed: bytes
) -> None:
    fmt = TokenFormat(FormatKind.SSN, keep_first=keep_first, keep_last=keep_last)
    forced = 1 if keep_first == 0 else 2
    if 9 - keep_first - keep_last - forced < MIN_RANDOM_DIGITS:
        assert not fits(value, fmt)
        return
    token = shaped_token(value, fmt, StreamRng(seed))
    assert same_shape(value, token)
    d = digits_of(token)
    area, group = d[:3], d[3:5]
    assert area.startswith("9") or group == "00"  # 900-999 and group 00 are never issued
    assert d[:keep_first] == digits_of(value)[:keep_first]
    assert d[9 - keep_last :] == digits_of(value)[9 - keep_last :]
    assert token != value


@given(value=st.from_regex(r"[1-9][0-9]{3,20}", fullmatch=True), seed=st.binary())
def test_numeric_tokens_keep_a_nonzero_first_digit(value: str, seed: bytes) -> None:
    token = shaped_token(value, NUMERIC, StreamRng(seed))
    assert token.isdigit()
    assert len(token) == len(value)
    assert token[0] != "0"
    assert token != value


def test_a_token_never_echoes_its_value() -> None:
    # An RNG whose first draw reproduces the value exactly: the token must be redrawn.
    value = "5678"
    draws = [b"\x05\x06\x07\x08", os.urandom(64)]

    def rng(n: int) -> bytes:
        chunk = draws.pop(0) if draws else os.urandom(n)
        return (chunk + os.urandom(n))[:n]

    token = shaped_token(value, NUMERIC, rng)
    assert token != value
    assert len(token) == 4


def test_random_digits_are_roughly_uniform() -> None:
    rng = StreamRng(b"uniform")
    counts = dict.fromkeys("0123456789", 0)
    for _ in range(2000):
        for c in shaped_token("0000000000", NUMERIC, rng):
            counts[c] += 1
    assert min(counts.values()) > 1700  # 2000 per digit expected
    assert max(counts.values()) < 2300


@pytest.mark.parametrize(
    ("fmt", "value", "ok"),
    [
        (NUMERIC, "1234", True),
        (NUMERIC, "123", False),  # fewer than 4 random digits
        (NUMERIC, "12-34 56", True),
        (NUMERIC, "12--34", False),
        (NUMERIC, "-1234", False),
        (NUMERIC, "1234 ", False),
        (NUMERIC, "12.34", False),
        (NUMERIC, "١٢٣٤٥", False),  # non-ASCII digits
        (NUMERIC, "1" * 64, True),
        (NUMERIC, "1" * 65, False),
        (NUMERIC, "", False),
        (PAN, "4111111111111111", True),
        (PAN, "4111 1111 1111 1111", True),
        (PAN, "4111-1111-1111-1111", True),
        (PAN, "41111111111", False),  # 11 digits
        (PAN, "1" * 19, True),
        (PAN, "1" * 20, False),
        (SSN, "123-45-6789", True),
        (SSN, "123456789", True),
        (SSN, "123 45 6789", False),
        (SSN, "12-345-6789", False),
        (SSN, "1234567890", False),
        (
            TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4),
            "4111111111111",
            False,
        ),  # 3 random
        (TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4), "41111111111111", True),
    ],
)
def test_what_fits(fmt: TokenFormat, value: str, ok: bool) -> None:
    assert fits(value, fmt) is ok
    if ok:  # a token of this value has the same shape, so detokenize reads it
        assert looks_shaped(value, fmt)


@pytest.mark.parametrize(
    ("fmt", "text", "shaped"),
    [
        (NUMERIC, "123", True),  # too short to tokenize, still the shape of a (kept-digit) token
        (NUMERIC, "12--34", False),
        (NUMERIC, "tok_abc", False),
        (PAN, "4111 1111 1111", True),
        (PAN, "4111 1111 111", False),
        (SSN, "123-456-789", False),
    ],
)
def test_what_looks_like_a_token(fmt: TokenFormat, text: str, shaped: bool) -> None:
    assert looks_shaped(text, fmt) is shaped


def test_shaped_token_refuses_a_value_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        shaped_token("12ab", NUMERIC, StreamRng())


@pytest.mark.parametrize(
    "fmt",
    [
        TokenFormat(FormatKind.NUMERIC, keep_first=31, keep_last=30),
        TokenFormat(FormatKind.PAN, keep_first=10, keep_last=6),
        TokenFormat(FormatKind.SSN, keep_last=5),  # 9 - 5 - 1 marker = 3 random
        TokenFormat(FormatKind.SSN, keep_first=4),  # the group cannot be marked
        TokenFormat(FormatKind.SSN, keep_first=1, keep_last=5),
        TokenFormat(FormatKind.NUMERIC, keep_first=-1),
        TokenFormat(FormatKind.SSN, luhn_valid=True),
    ],
)
def test_check_refuses_formats_no_value_could_fit(fmt: TokenFormat) -> None:
    with pytest.raises(VaultConfigError):
        check_shaped(fmt)


@pytest.mark.parametrize(
    "fmt",
    [
        TokenFormat(FormatKind.NUMERIC, keep_first=30, keep_last=30),
        TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4, luhn_valid=True),
        TokenFormat(FormatKind.SSN, keep_last=4),
        TokenFormat(FormatKind.SSN, keep_first=3),
    ],
)
def test_check_accepts_workable_formats(fmt: TokenFormat) -> None:
    check_shaped(fmt)


@pytest.mark.parametrize(
    ("digits", "ok"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_ok(digits) is ok


@given(digits=st.text("0123456789", min_size=12, max_size=19), data=st.data())
def test_luhn_options_are_the_candidates_the_check_accepts(
    digits: str, data: st.DataObject
) -> None:
    """The one-pass choice equals trying every digit with the full check (same order)."""
    index = data.draw(st.integers(0, len(digits) - 1))
    for valid in (True, False):
        brute = [
            d for d in "0123456789" if luhn_ok(digits[:index] + d + digits[index + 1 :]) == valid
        ]
        assert luhn_options(list(digits), index, valid) == "".join(brute)


# Tokens the first implementation drew from StreamRng(seed): the draw order is part of the
# format (the vectors depend on it), so a faster implementation must draw exactly these.
PINNED = [
    (TokenFormat(FormatKind.NUMERIC), "9876543210", b"a", "4748202501"),
    (TokenFormat(FormatKind.NUMERIC), "9876543210", b"b", "1580073463"),
    (TokenFormat(FormatKind.NUMERIC), "0012 3456", b"a", "0748 2025"),
    (TokenFormat(FormatKind.NUMERIC), "0012 3456", b"b", "7580 0734"),
    (
        TokenFormat(FormatKind.NUMERIC, keep_first=2, keep_last=3),
        "31-4159-2653",
        b"a",
        "31-0748-2653",
    ),
    (
        TokenFormat(FormatKind.NUMERIC, keep_first=2, keep_last=3),
        "31-4159-2653",
        b"b",
        "31-7580-0653",
    ),
    (TokenFormat(FormatKind.PAN), "4111 1111 1111 1111", b"a", "0748 2025 0121 6114"),
    (TokenFormat(FormatKind.PAN), "4111 1111 1111 1111", b"b", "7580 0734 6334 5230"),
    (
        TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4),
        "4111-1111-1111-1111",
        b"a",
        "4111-1107-4824-1111",
    ),
    (
        TokenFormat(FormatKind.PAN, keep_first=6, keep_last=4),
        "4111-1111-1111-1111",
        b"b",
        "4111-1175-8000-1111",
    ),
    (TokenFormat(FormatKind.PAN, luhn_valid=True), "5555555555554444", b"a", "0748202501216112"),
    (TokenFormat(FormatKind.PAN, luhn_valid=True), "5555555555554444", b"b", "7580073463345231"),
    (TokenFormat(FormatKind.PAN, keep_last=4), "4222222222222", b"a", "0748202532222"),
    (TokenFormat(FormatKind.PAN, keep_last=4), "4222222222222", b"b", "7580073402222"),
    (
        TokenFormat(FormatKind.PAN, keep_first=1, luhn_valid=True),
        "6011 0009 9013 9424 123",
        b"a",
        "6074 8202 5012 1611 139",
    ),
    (
        TokenFormat(FormatKind.PAN, keep_first=1, luhn_valid=True),
        "6011 0009 9013 9424 123",
        b"b",
        "6758 0073 4633 4523 096",
    ),
    (TokenFormat(FormatKind.SSN), "123-45-6789", b"a", "907-48-2025"),
    (TokenFormat(FormatKind.SSN), "123-45-6789", b"b", "975-80-0734"),
    (TokenFormat(FormatKind.SSN, keep_last=4), "123456789", b"a", "907486789"),
    (TokenFormat(FormatKind.SSN, keep_last=4), "123456789", b"b", "975806789"),
    (TokenFormat(FormatKind.SSN, keep_first=3), "078-05-1120", b"a", "078-00-0748"),
    (TokenFormat(FormatKind.SSN, keep_first=3), "078-05-1120", b"b", "078-00-7580"),
]


@pytest.mark.parametrize(("fmt", "value", "seed", "token"), PINNED)
def test_the_same_rng_bytes_give_the_same_token(
    fmt: TokenFormat, value: str, seed: bytes, token: str
) -> None:
    assert shaped_token(value, fmt, StreamRng(seed)) == token
