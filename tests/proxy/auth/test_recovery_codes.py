"""Recovery codes: format, uniform generation from the given RNG, normalisation, keyed hashes."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import struct
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kms_client import rng
from proxy.auth.recovery_codes import (
    ALPHABET,
    DIGEST_LABEL,
    digest,
    display,
    find,
    generate,
    normalize,
)

KEY = bytes(range(32))
FORMAT = re.compile(r"^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$")


def test_generates_distinct_codes_from_the_keyring_rng() -> None:
    codes = generate(rng.random_bytes, count=10)
    assert len(codes) == len(set(codes)) == 10
    assert all(FORMAT.match(display(c)) for c in codes)
    assert all(normalize(display(c)) == c for c in codes)


def test_uses_exactly_the_rng_it_is_given() -> None:
    calls: list[int] = []

    def fixed(n: int) -> bytes:
        calls.append(n)
        return bytes(range(len(calls) * 10, len(calls) * 10 + n))

    assert generate(fixed, count=2) == ["abcdefghjk", "mnpqrstvwx"]
    assert calls == [10, 10]


def test_duplicate_draws_are_redrawn() -> None:
    draws = iter([bytes(10), bytes(10), bytes([1] * 10)])
    assert generate(lambda n: next(draws), count=2) == ["0000000000", "1111111111"]


def repeat(value: int, n: int) -> bytes:
    return bytes([value] * n)


def test_characters_are_uniform_over_the_alphabet() -> None:
    # every byte value maps to one character, each character from exactly 8 byte values
    codes = [generate(functools.partial(repeat, b), count=1)[0] for b in range(256)]
    counts = Counter(code[0] for code in codes)
    assert counts == Counter({c: 8 for c in ALPHABET})


@pytest.mark.parametrize("count", [0, 33])
def test_count_is_bounded(count: int) -> None:
    with pytest.raises(ValueError, match="recovery codes:"):
        generate(os.urandom, count=count)


def test_short_rng_output_refused() -> None:
    with pytest.raises(ValueError, match="wrong number of bytes"):
        generate(lambda n: b"x", count=1)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("k3v9q-8tmw2", "k3v9q8tmw2"),
        ("K3V9Q 8TMW2", "k3v9q8tmw2"),
        ("  k3v9q8tmw2 ", "k3v9q8tmw2"),
        ("kIvOq-8tmwL", "k1v0q8tmw1"),
    ],
)
def test_normalize_accepts_what_people_type(typed: str, canonical: str) -> None:
    assert normalize(typed) == canonical


@pytest.mark.parametrize(
    "typed", ["", "k3v9q-8tmw", "k3v9q-8tmw22", "k3v9u-8tmw2", "k3v9q_8tmw2", "k3v9q-8tmw\u00e9"]
)
def test_normalize_refuses_non_codes(typed: str) -> None:
    assert normalize(typed) is None


def test_digest_known_answer() -> None:
    def framed(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    expected = hmac.new(
        KEY, framed(DIGEST_LABEL) + framed(b"alice") + framed(b"k3v9q8tmw2"), hashlib.sha256
    ).digest()
    assert digest(KEY, "alice", "k3v9q8tmw2") == expected


def test_digest_binds_key_subject_and_code() -> None:
    base = digest(KEY, "alice", "k3v9q8tmw2")
    assert digest(bytes(32), "alice", "k3v9q8tmw2") != base
    assert digest(KEY, "bob", "k3v9q8tmw2") != base
    assert digest(KEY, "alice", "k3v9q8tmw3") != base
    # length framing: moving a character between subject and code changes the digest
    assert digest(KEY, "alicek", "3v9q8tmw2x") != digest(KEY, "alice", "k3v9q8tmw2")


def test_short_key_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        digest(b"k" * 31, "alice", "k3v9q8tmw2")


def test_find_returns_the_match_only() -> None:
    stored = [digest(KEY, "alice", c) for c in generate(os.urandom, count=10)]
    assert find(stored, stored[7]) == stored[7]
    assert find(stored, digest(KEY, "alice", "0000000000")) is None
    assert find([], stored[0]) is None


@given(st.binary(min_size=10, max_size=10))
def test_every_generated_code_survives_display_and_typing(raw: bytes) -> None:
    (code,) = generate(lambda n: raw, count=1)
    assert normalize(code) == code
    assert normalize(display(code)) == code
    assert normalize(display(code).upper().replace("-", " ")) == code
