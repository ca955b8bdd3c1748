"""Structured fields: our serializer and parser against the independent http_sf package."""

from __future__ import annotations

from decimal import Decimal

import http_sf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.proof.errors import ProofError
from proxy.proof.structured import (
    BareItem,
    InnerList,
    Item,
    Member,
    Token,
    parse_dictionary,
    serialize_dictionary,
)

keys = st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,6}", fullmatch=True)
bare = st.one_of(
    st.integers(-999_999_999_999_999, 999_999_999_999_999),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
    st.binary(max_size=20),
    st.booleans(),
    st.from_regex(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]{0,6}", fullmatch=True).map(Token),
    st.integers(-(10**9), 10**9).map(lambda n: n / 1000),
)
params = st.dictionaries(keys, bare, max_size=3)
items = st.builds(Item, bare, params)
members = st.one_of(items, st.builds(InnerList, st.lists(items, max_size=3), params))
dictionaries = st.dictionaries(keys, members, min_size=1, max_size=4)


def _theirs(value: BareItem) -> object:
    if isinstance(value, Token):
        return http_sf.Token(value.value)
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _to_http_sf(members: dict[str, Member]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, member in members.items():
        ps = {k: _theirs(v) for k, v in member.params.items()}
        if isinstance(member, InnerList):
            out[key] = (
                [
                    (_theirs(i.value), {k: _theirs(v) for k, v in i.params.items()})
                    for i in member.items
                ],
                ps,
            )
        else:
            out[key] = (_theirs(member.value), ps)
    return out


@settings(max_examples=300, deadline=None)
@given(dictionaries)
def test_serialization_matches_http_sf_and_round_trips(value: dict[str, Member]) -> None:
    ours = serialize_dictionary(value)
    assert ours == http_sf.ser(_to_http_sf(value))  # type: ignore[arg-type]
    reparsed = parse_dictionary(ours)
    assert serialize_dictionary(reparsed) == ours
    assert http_sf.ser(http_sf.parse(ours.encode(), tltype="dictionary")) == ours


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1", {"a": Item(1)}),
        ('  a="x\\"y\\\\", b', {"a": Item('x"y\\'), "b": Item(True)}),
        ("a=:AQID:;p=tok", {"a": Item(b"\x01\x02\x03", {"p": Token("tok")})}),
        ("a=:AQI:", {"a": Item(b"\x01\x02")}),
        (
            'sig=("@method" "x");created=5;keyid="k"',
            {"sig": InnerList([Item("@method"), Item("x")], {"created": 5, "keyid": "k"})},
        ),
        ("a=(),b=?0,\tc=-1.25", {"a": InnerList([]), "b": Item(False), "c": Item(-1.25)}),
        ("", {}),
    ],
)
def test_parse(text: str, expected: dict[str, Member]) -> None:
    assert parse_dictionary(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a=1, a=2",
        "a=1;p;p",
        "A=1",
        "a=1,",
        "a=1 b=2",
        'a="unterminated',
        'a="bad \\n escape"',
        "a=:not base64!:",
        "a=:AQID",
        "a=?2",
        "a=1234567890123456",
        "a=1.2345",
        "a=(1 2",
        "a=(1,2)",
        "a=@1",
        "a=\u00e9",
        "a=1;",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ProofError):
        parse_dictionary(text)


@pytest.mark.parametrize(
    "value",
    [{}, {"A": Item(1)}, {"a": Item(10**15)}, {"a": Item("\n")}, {"a": Item(Token("1x"))}],
)
def test_serialize_refuses(value: dict[str, Member]) -> None:
    with pytest.raises(ValueError, match="structured"):
        serialize_dictionary(value)
