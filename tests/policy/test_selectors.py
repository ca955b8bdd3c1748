"""Selectors: the grammar, canonical text, and selection / write-back on JSON documents."""

from __future__ import annotations

import copy
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.selectors import (
    Descend,
    Index,
    Member,
    Wildcard,
    json_remove,
    json_replace,
    parse_selector,
    path_text,
    select_json,
)


@pytest.mark.parametrize(
    ("text", "kind", "name", "steps", "canonical"),
    [
        ("$.ssn", "json", "", (Member("ssn"),), "$.ssn"),
        ("$.a.b", "json", "", (Member("a"), Member("b")), "$.a.b"),
        ("$.a[0]", "json", "", (Member("a"), Index(0)), "$.a[0]"),
        (
            "$.items[*].ssn",
            "json",
            "",
            (Member("items"), Wildcard(), Member("ssn")),
            "$.items[*].ssn",
        ),
        ("$.items.*", "json", "", (Member("items"), Wildcard()), "$.items[*]"),
        ("$..ssn", "json", "", (Descend("ssn"),), "$..ssn"),
        ("$..['card no']", "json", "", (Descend("card no"),), "$..['card no']"),
        ("$['a b'].c", "json", "", (Member("a b"), Member("c")), "$['a b'].c"),
        ('$["x"]', "json", "", (Member("x"),), "$.x"),
        ("$['it\\'s']", "json", "", (Member("it's"),), "$['it\\'s']"),
        ("$['back\\\\slash']", "json", "", (Member("back\\slash"),), "$['back\\\\slash']"),
        ("$.first-name", "json", "", (Member("first-name"),), "$.first-name"),
        ("$[2][*]", "json", "", (Index(2), Wildcard()), "$[2][*]"),
        ("form:ssn", "form", "ssn", (), "form:ssn"),
        ("form:card number", "form", "card number", (), "form:card number"),
        ("query:card", "query", "card", (), "query:card"),
        ("header:X-SSN", "header", "x-ssn", (), "header:x-ssn"),
        ("header:Authorization", "header", "authorization", (), "header:authorization"),
    ],
)
def test_parse(text: str, kind: str, name: str, steps: tuple[object, ...], canonical: str) -> None:
    sel = parse_selector(text)
    assert (sel.kind, sel.name, sel.steps) == (kind, name, steps)
    assert str(sel) == canonical
    assert parse_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "cannot be empty"),
        ("$", "'$' alone selects the whole body"),
        ("ssn", "starts with $, form:, query: or header:"),
        ("cookie:sid", "starts with $, form:, query: or header:"),
        ("form:", "form: needs a name"),
        ("query:a\nb", "query: needs a name"),
        ("header:X SSN", "header: needs a header field name"),
        ("header:Content-Length", "managed by the gateway"),
        ("header:content-type", "managed by the gateway"),
        ("header:Transfer-Encoding", "managed by the gateway"),
        ("header:Host", "managed by the gateway"),
        ("header:Signature-Input", "managed by the gateway"),
        ("header:Tokengate-Identity", "managed by the gateway"),
        ("$.", "'.' must be followed by a member name"),
        ("$.1abc", "'.' must be followed by a member name"),
        ("$..*", "'..' must be followed by a member name"),
        ("$..", "'..' must be followed by a member name"),
        ("$[-1]", "unsupported selector syntax"),
        ("$[1:2]", "unsupported selector syntax"),
        ("$[?(@.a)]", "unsupported selector syntax"),
        ("$['a", "unterminated quoted member name"),
        ("$['a'", "expected ']'"),
        ("$['a'x", "expected ']'"),
        ("$['']", "cannot be empty"),
        ("$.a b", "unsupported selector syntax"),
    ],
)
def test_parse_refuses(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_selector(text)


DOC = {
    "ssn": "1",
    "user": {"ssn": "2", "name": "n", "tags": ["a", "b"]},
    "items": [{"ssn": "3"}, {"other": 1}, {"ssn": None}, "x"],
    "deep": {"x": {"y": {"ssn": "4", "z": [{"ssn": "5"}]}}},
}


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ("$.ssn", [("ssn",)]),
        ("$.user.ssn", [("user", "ssn")]),
        ("$.user.tags[1]", [("user", "tags", 1)]),
        ("$.user.tags[9]", []),
        ("$.missing.ssn", []),
        ("$.ssn.deeper", []),
        ("$.items[*].ssn", [("items", 0, "ssn"), ("items", 2, "ssn")]),
        ("$.items[0].*", [("items", 0, "ssn")]),
        ("$.user.tags[*]", [("user", "tags", 0), ("user", "tags", 1)]),
        ("$.user[0]", []),
        ("$.items.ssn", []),
        (
            "$..ssn",
            [
                ("ssn",),
                ("user", "ssn"),
                ("items", 0, "ssn"),
                ("items", 2, "ssn"),
                ("deep", "x", "y", "ssn"),
                ("deep", "x", "y", "z", 0, "ssn"),
            ],
        ),
        ("$.deep..ssn", [("deep", "x", "y", "ssn"), ("deep", "x", "y", "z", 0, "ssn")]),
        ("$..y..ssn", [("deep", "x", "y", "ssn"), ("deep", "x", "y", "z", 0, "ssn")]),
    ],
)
def test_select_json(text: str, paths: list[tuple[object, ...]]) -> None:
    hits = select_json(DOC, parse_selector(text).steps)
    assert sorted(map(repr, (p for p, _ in hits))) == sorted(map(repr, paths))


def test_select_returns_values_and_non_scalars() -> None:
    hits = dict(select_json(DOC, parse_selector("$.user.*").steps))
    assert hits[("user", "ssn")] == "2"
    assert hits[("user", "tags")] == ["a", "b"]


def test_nested_descend_yields_each_location_once() -> None:
    doc = {"a": {"a": {"b": "x"}}}
    assert select_json(doc, parse_selector("$..a..b").steps) == [(("a", "a", "b"), "x")]


def test_descend_survives_deep_nesting() -> None:
    doc: object = {"ssn": "bottom"}
    for _ in range(5000):
        doc = {"n": doc}
    hits = select_json(doc, parse_selector("$..ssn").steps)
    assert len(hits) == 1
    assert hits[0][1] == "bottom"


def test_replace_and_remove() -> None:
    doc = copy.deepcopy(DOC)
    json_replace(doc, ("user", "ssn"), "T")
    json_remove(doc, ("ssn",))
    json_remove(doc, ("user", "tags", 0))
    assert doc["user"] == {"ssn": "T", "name": "n", "tags": [None, "b"]}
    assert "ssn" not in doc


@pytest.mark.parametrize("path", [(), ("nope", "x"), ("ssn", "x"), ("items", "x"), ("user", 0)])
def test_write_back_refuses_paths_that_do_not_exist(path: tuple[str | int, ...]) -> None:
    doc = copy.deepcopy(DOC)
    with pytest.raises((ValueError, KeyError)):
        json_replace(doc, path, "x")
    assert doc == DOC


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("a", 3, "ssn"), "$.a[3].ssn"),
        (("a b",), "$['a b']"),
        (("it's",), "$['it\\'s']"),
        ((0,), "$[0]"),
    ],
)
def test_path_text(path: tuple[str | int, ...], text: str) -> None:
    assert path_text(path) == text


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
steps = st.lists(
    st.one_of(
        names.map(Member),
        st.integers(0, 99).map(Index),
        st.just(Wildcard()),
        names.map(Descend),
    ),
    min_size=1,
    max_size=5,
)


@given(steps)
def test_canonical_text_round_trips(parsed: list[object]) -> None:
    from policy.selectors import Selector

    sel = Selector("json", steps=tuple(parsed))  # type: ignore[arg-type]
    assert parse_selector(str(sel)) == sel


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["ssn", "a", "b", "items"]), inner, max_size=4),
    ),
    max_leaves=20,
)


def _reversed_members(value: object) -> object:
    if isinstance(value, dict):
        return {k: _reversed_members(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reversed_members(v) for v in value]
    return value


@given(json_values, st.sampled_from(["$..ssn", "$.items[*].ssn", "$.a.*", "$..a..ssn", "$.*[0]"]))
def test_selection_does_not_depend_on_member_order(doc: object, text: str) -> None:
    sel = parse_selector(text)
    straight = {path: repr(_reversed_members(v)) for path, v in select_json(doc, sel.steps)}
    flipped_doc = _reversed_members(doc)
    flipped = {path: repr(v) for path, v in select_json(flipped_doc, sel.steps)}
    assert straight == flipped


@given(json_values, st.sampled_from(["$..ssn", "$.items[*].ssn", "$.a.*", "$..a..ssn", "$.*[0]"]))
def test_located_slots_name_and_hold_what_select_finds(doc: object, text: str) -> None:
    from policy.selectors import locate_json

    steps = parse_selector(text).steps
    slots = locate_json(doc, steps)
    assert [(path, node) for path, _, _, _, node in slots] == select_json(doc, steps)
    for path, where, parent, key, node in slots:
        assert where == path_text(path)
        assert path[-1] == key
        assert parent[key] is node  # type: ignore[index]


def test_located_text_escapes_member_names() -> None:
    from policy.selectors import locate_json

    slots = locate_json({"a b": [{"it's": 1}]}, parse_selector("$.*[0].*").steps)
    assert [s[1] for s in slots] == ["$['a b'][0]['it\\'s']"]
