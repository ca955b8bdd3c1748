"""Canonical JSON: known answers, refusals, and properties (RFC 8785 subset)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.canonical import MAX_SAFE_INT, JsonValue, canonical_json, sha256_hex
from audit.errors import AuditFormatError


def test_known_answer() -> None:
    value: JsonValue = {"b": 1, "a": "é\n", "c": [True, None, "x"], "d": {"z": -5, "y": ""}}
    assert canonical_json(value) == (
        b'{"a":"\xc3\xa9\\n","b":1,"c":[true,null,"x"],"d":{"y":"","z":-5}}'
    )


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("\x1f", b'"\\u001f"'),  # controls below U+0020: lowercase \u00xx
        ("\b\f\n\r\t", b'"\\b\\f\\n\\r\\t"'),
        ('"\\', b'"\\"\\\\"'),
        ("\x7f", b'"\x7f"'),  # JCS escapes nothing else
        ("\u2028", b'"\xe2\x80\xa8"'),
        ("/", b'"/"'),
        ("\U0001f600", b'"\xf0\x9f\x98\x80"'),
    ],
)
def test_string_escapes_follow_jcs(text: str, encoded: bytes) -> None:
    assert canonical_json(text) == encoded


def test_integers_at_the_exact_json_limits_are_allowed() -> None:
    assert (
        canonical_json([MAX_SAFE_INT, -MAX_SAFE_INT, 0])
        == b"[9007199254740991,-9007199254740991,0]"
    )


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        {"a": 1.0},
        MAX_SAFE_INT + 1,
        -MAX_SAFE_INT - 1,
        {"é": 1},
        {1: "x"},
        "\ud800",  # lone surrogate: not UTF-8
        b"bytes",
        (1, 2),
    ],
)
def test_values_outside_the_subset_are_refused(value: object) -> None:
    with pytest.raises(AuditFormatError):
        canonical_json(value)  # type: ignore[arg-type]


def test_deep_nesting_is_refused() -> None:
    value: object = "x"
    for _ in range(10):
        value = [value]
    with pytest.raises(AuditFormatError):
        canonical_json(value)  # type: ignore[arg-type]


def test_sha256_hex_known_answer() -> None:
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT)
    | st.text(st.characters(codec="utf-8")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_canonical_form_is_a_fixed_point(value: object) -> None:
    encoded = canonical_json(value)  # type: ignore[arg-type]
    assert json.loads(encoded) == value
    assert canonical_json(json.loads(encoded)) == encoded


@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=6), st.integers(0, 9)))
def test_key_order_does_not_matter(mapping: dict[str, int]) -> None:
    reversed_order = dict(reversed(list(mapping.items())))
    assert canonical_json(mapping) == canonical_json(reversed_order)  # type: ignore[arg-type]
