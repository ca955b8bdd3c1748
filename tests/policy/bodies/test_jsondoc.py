"""JSON bodies: strict parsing, numbers kept exactly, untouched bodies byte-identical."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.bodies.errors import Malformed
from policy.bodies.jsondoc import JsonDocument, JsonFloat, encode_json, parse_json
from policy.selectors import parse_selector


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not valid json"),
        (b"{", "not valid json"),
        (b"{'a': 1}", "not valid json"),
        (b'{"a": 1,}', "not valid json"),
        (b'{"a": NaN}', "not valid json"),
        (b'{"a": Infinity}', "not valid json"),
        (b'{"a": -Infinity}', "not valid json"),
        (b'{"a": "\x01"}', "not valid json"),
        (b'{"a": 1} x', "not valid json"),
        (b'{"ssn": "1", "ssn": "2"}', "repeats a member name"),
        (b'{"a": {"ssn": "1", "ssn": "2"}}', "repeats a member name"),
        (b'[{"b": 1, "b": 1}]', "repeats a member name"),
        (b'{"a": "\xff"}', "not utf-8"),
        (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid json"),
    ],
)
def test_parse_refuses(body: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        parse_json(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"n": 12345678901234567890123}', b'{"n":12345678901234567890123}'),
        (b'{"n": -0}', b'{"n":0}'),
        (b'{"n": 1e400}', b'{"n":1e400}'),
        (b'{"n": 0.10}', b'{"n":0.10}'),
        (b'{"n": 1.5E-7}', b'{"n":1.5E-7}'),
        (b'{"b": true, "f": false, "z": null}', b'{"b":true,"f":false,"z":null}'),
        (b'{"s": "caf\\u00e9 \xe2\x82\xac"}', '{"s":"café €"}'.encode()),
        (b'{"s": "\\ud800"}', b'{"s":"\\ud800"}'),
        (b'{"s": "a\\"b\\\\c\\n"}', b'{"s":"a\\"b\\\\c\\n"}'),
        (b'{"b": 1, "a": 2}', b'{"b":1,"a":2}'),
        (b"[]", b"[]"),
        (b"{}", b"{}"),
        (b'"x"', b'"x"'),
        (b'[[1, [2, {"a": []}]], {}]', b'[[1,[2,{"a":[]}]],{}]'),
    ],
)
def test_encode_keeps_numbers_order_and_text(body: bytes, expected: bytes) -> None:
    assert encode_json(parse_json(body)) == expected


def test_ints_stay_ints_and_floats_remember_their_text() -> None:
    doc = parse_json(b'{"i": 9007199254740993, "f": 2.50}')
    assert isinstance(doc, dict)
    assert type(doc["i"]) is int
    assert doc["i"] == 9007199254740993
    assert isinstance(doc["f"], JsonFloat)
    assert doc["f"] == 2.5
    assert doc["f"].text == "2.50"


def test_encode_survives_deep_nesting() -> None:
    body = b"[" * 900 + b"]" * 900
    assert encode_json(parse_json(body)) == body


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object()])
def test_encode_refuses_what_json_cannot_hold(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        encode_json({"a": value})


def test_document_replace_remove_and_changed() -> None:
    doc = JsonDocument(b'{"ssn": "1", "items": [{"ssn": "2"}, {"ssn": "3"}], "n": 1.0}')
    assert [doc.changed] == [False]
    hits = doc.select(parse_selector("$..ssn").steps)
    assert sorted(str(v) for _, v in hits) == ["1", "2", "3"]
    doc.replace(("ssn",), "tok_1")
    doc.remove(("items", 0, "ssn"))
    doc.remove(("items", 1))
    assert doc.changed
    assert doc.encode() == b'{"ssn":"tok_1","items":[{},null],"n":1.0}'


def test_document_replace_refuses_non_finite_without_changing() -> None:
    doc = JsonDocument(b'{"a": 1}')
    with pytest.raises(ValueError, match="non-finite"):
        doc.replace(("a",), float("inf"))
    assert not doc.changed
    assert doc.encode() == b'{"a":1}'


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(json_values)
def test_encode_is_json_with_the_same_value(value: object) -> None:
    encoded = encode_json(value)
    assert json.loads(encoded) == value
    assert parse_json(encoded) == value
    assert encode_json(parse_json(encoded)) == encoded


def _document(body: bytes) -> JsonDocument:
    doc = JsonDocument(body)
    doc.changed = True  # as after a rule's write
    return doc


@pytest.mark.parametrize(
    "body",
    [
        b'{"s": "\\ud800", "t": "caf\\u00e9"}',  # a lone surrogate stays escaped
        b'{"n": 0.10, "i": 1}',  # a float keeps its text
        b'{"b": 1, "a": [true, false, null, "x\\n\\"y"], "c": {}}',
    ],
)
def test_document_encode_matches_the_exact_encoder(body: bytes) -> None:
    assert _document(body).encode() == encode_json(parse_json(body))


def test_plain_encoding_survives_nesting_deeper_than_the_c_encoder() -> None:
    deep: list[object] = []
    for _ in range(20_000):
        deep = [deep]
    assert encode_json(deep, plain=True) == b"[" * 20_001 + b"]" * 20_001


def test_a_float_written_back_keeps_its_text() -> None:
    doc = _document(b'{"a": "x", "b": 1}')
    doc.replace(("a",), JsonFloat("1.50"))
    assert doc.encode() == b'{"a":1.50,"b":1}'


def test_a_plain_float_written_back_is_its_shortest_repr() -> None:
    doc = _document(b'{"a": "x"}')
    doc.replace(("a",), 0.1)
    assert doc.encode() == b'{"a":0.1}'


@given(json_values)
def test_document_encode_is_the_exact_encoder(value: object) -> None:
    body = encode_json(value)
    assert _document(body).encode() == body
