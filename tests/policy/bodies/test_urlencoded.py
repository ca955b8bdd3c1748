"""Urlencoded bodies and query strings: order, repeats, strict decoding, minimal re-encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.bodies.errors import Malformed
from policy.bodies.urlencoded import FormPairs, UrlencodedDocument


@pytest.mark.parametrize(
    ("text", "name", "values"),
    [
        ("ssn=123", "ssn", ["123"]),
        ("a=1&ssn=1&b=2&ssn=2", "ssn", ["1", "2"]),
        ("ssn", "ssn", [""]),
        ("ssn=", "ssn", [""]),
        ("s%73n=x", "ssn", ["x"]),
        ("card+no=4111+1111", "card no", ["4111 1111"]),
        ("n=%E2%82%AC%20%2B", "n", ["€ +"]),
        ("n=a=b", "n", ["a=b"]),
        ("a=1&&b=2&", "a", ["1"]),
        ("", "a", []),
        ("A=1", "a", []),
    ],
)
def test_select(text: str, name: str, values: list[str]) -> None:
    assert [v for _, v in FormPairs(text).select(name)] == values


@pytest.mark.parametrize("text", ["a=%zz", "a=%4", "a=%", "%GG=1", "a=%ff", "a=%c3%28"])
def test_malformed(text: str) -> None:
    with pytest.raises(Malformed):
        FormPairs(text)


def test_body_must_be_utf8() -> None:
    with pytest.raises(Malformed, match="not utf-8"):
        UrlencodedDocument(b"a=\xff")


@pytest.mark.parametrize(
    ("text", "edits", "expected"),
    [
        ("a=1&ssn=123&b=%41", [("replace", 1, "tok_x")], "a=1&ssn=tok_x&b=%41"),
        ("s%73n=1&s%73n=2", [("replace", 0, "a b/&=")], "s%73n=a+b%2F%26%3D&s%73n=2"),
        ("ssn&x=1", [("replace", 0, "t")], "ssn=t&x=1"),
        ("a=1&ssn=2&b=3", [("remove", 1, "")], "a=1&b=3"),
        ("ssn=2&ssn=3", [("remove", 0, ""), ("remove", 1, "")], ""),
        ("a=1&&b=2", [("replace", 0, "€")], "a=%E2%82%AC&&b=2"),
    ],
)
def test_edit_re_encodes_only_changed_pairs(
    text: str, edits: list[tuple[str, int, str]], expected: str
) -> None:
    pairs = FormPairs(text)
    for op, index, value in edits:
        if op == "replace":
            pairs.replace(index, value)
        else:
            pairs.remove(index)
    assert pairs.changed
    assert pairs.encode() == expected
    assert FormPairs(expected).encode() == expected


def test_removed_pairs_are_not_selected_again() -> None:
    pairs = FormPairs("ssn=1&ssn=2")
    pairs.remove(0)
    assert pairs.select("ssn") == [(1, "2")]


safe_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10)


@given(st.lists(st.tuples(safe_text, safe_text), max_size=6))
def test_untouched_text_is_identical_and_replaced_values_decode(
    pairs: list[tuple[str, str]],
) -> None:
    from urllib.parse import urlencode

    text = urlencode(pairs)
    form = FormPairs(text)
    assert form.encode() == text
    assert not form.changed
    for i, (_name, value) in enumerate(pairs):
        form.replace(i, value[::-1])
    again = FormPairs(form.encode())
    for i, (name, value) in enumerate(pairs):
        assert (i, value[::-1]) in again.select(name)
