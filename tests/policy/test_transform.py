"""The message transformer: batching, concurrency, decisions, codecs, limits and fail-closed paths."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import brotli  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plugins.base import ActionContext, FieldResult, FieldValue, Scalar, Subject
from policy.message import (
    BadField,
    BadRequest,
    Denied,
    Message,
    MessageError,
    PayloadTooLarge,
    TransformedMessage,
    UnsupportedMediaType,
    header_values,
)
from policy.selectors import parse_selector
from policy.transform import CompiledRule, MessageTransformer

SECRET = "123-45-6789"
JSON = ("Content-Type", "application/json")
FORM = ("Content-Type", "application/x-www-form-urlencoded")


class Verdict:
    """Decides by value: 'deny...' -> deny, 'bad...' -> invalid, 'drop...' -> remove, else T:value."""

    name: ClassVar[str] = "verdict"

    def __init__(self) -> None:
        self.calls: list[tuple[list[FieldValue], ActionContext]] = []

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        self.calls.append((list(batch), ctx))
        return [self._one(item.value) for item in batch]

    @staticmethod
    def _one(value: Scalar) -> FieldResult:
        text = str(value)
        if text.startswith("deny"):
            return FieldResult.deny("not allowed")
        if text.startswith("bad"):
            return FieldResult.invalid("wrong shape")
        if text.startswith("drop"):
            return FieldResult.remove()
        return FieldResult.replace(f"T:{text}")


class Fixed:
    """Replaces every value with one fixed scalar (or returns a wrong number of results)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, value: Scalar, *, short: bool = False) -> None:
        self.value, self.short = value, short

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        results = [FieldResult.replace(self.value) for _ in batch]
        return results[:-1] if self.short else results


class Gate:
    """Waits until every Gate of the message has started: proves rules run concurrently."""

    name: ClassVar[str] = "gate"

    def __init__(self, started: list[asyncio.Event], index: int, *, fail: bool = False) -> None:
        self.started, self.index, self.fail = started, index, fail
        self.cancelled = False

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        self.started[self.index].set()
        if self.fail:
            raise RuntimeError("vault down")
        try:
            for event in self.started:
                await asyncio.wait_for(event.wait(), 5)
            await asyncio.sleep(0 if len(self.started) == 1 else 1)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return [FieldResult.replace("ok") for _ in batch]


def ctx() -> ActionContext:
    none = cast(Any, None)
    return ActionContext(
        route="?",
        rule="?",
        direction="request",
        subject=Subject(sub="u1"),
        vault=none,
        keys=none,
        audit=none,
        limiter=none,
        now=0.0,
        request_id="req-1",
    )


def transformer(*rules: tuple[str, Any], direction: str = "request") -> MessageTransformer:
    compiled = [
        CompiledRule(f"{direction}[{i}]", parse_selector(text), action)
        for i, (text, action) in enumerate(rules)
    ]
    return MessageTransformer(route="users", direction=direction, rules=compiled)  # type: ignore[arg-type]


def message(
    body: bytes = b"",
    *headers: tuple[str, str],
    query: str = "",
    limit: int = 64 * 1024,
) -> Message:
    return Message(headers=tuple(headers), body=body, query=query, limit=limit)


async def run(t: MessageTransformer, m: Message) -> TransformedMessage:
    return await t.apply(m, ctx())


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()


# --- JSON bodies ------------------------------------------------------------------------


async def test_json_values_of_one_rule_go_in_one_batch() -> None:
    action = Verdict()
    t = transformer(("$..ssn", action))
    body = dumps({"ssn": "a", "people": [{"ssn": "b"}, {"ssn": "c"}], "n": 12345678901234567890})
    out = await run(t, message(body, JSON, ("Content-Length", str(len(body)))))
    assert len(action.calls) == 1
    batch, used = action.calls[0]
    assert sorted(str(v.value) for v in batch) == ["a", "b", "c"]
    assert {v.location for v in batch} == {"$.ssn", "$.people[0].ssn", "$.people[1].ssn"}
    assert (used.route, used.rule, used.direction, used.request_id) == (
        "users",
        "request[0]",
        "request",
        "req-1",
    )
    assert out.body == (
        b'{"ssn":"T:a","people":[{"ssn":"T:b"},{"ssn":"T:c"}],"n":12345678901234567890}'
    )
    assert out.body_changed
    assert out.fields == 3
    assert header_values(out.headers, "content-length") == [str(len(out.body))]


async def test_rule_without_matches_is_not_called_and_body_is_untouched() -> None:
    action = Verdict()
    t = transformer(("$.ssn", action))
    body = b'{ "name" : "x",  "n": 1.50 }'
    m = message(body, JSON, ("Content-Length", str(len(body))))
    out = await run(t, m)
    assert action.calls == []
    assert out.body is body
    assert out.headers == m.headers
    assert not out.body_changed


async def test_nulls_are_left_alone() -> None:
    action = Verdict()
    out = await run(
        transformer(("$..ssn", action)), message(b'{"ssn": null, "a": {"ssn": "x"}}', JSON)
    )
    assert [v.value for v in action.calls[0][0]] == ["x"]
    assert json.loads(out.body) == {"ssn": None, "a": {"ssn": "T:x"}}


async def test_remove_drops_members_and_nulls_array_elements() -> None:
    t = transformer(("$.ssn", Verdict()), ("$.list[*]", Verdict()))
    out = await run(t, message(dumps({"ssn": "drop", "list": ["drop", "k"], "x": 1}), JSON))
    assert json.loads(out.body) == {"list": [None, "T:k"], "x": 1}


async def test_a_location_belongs_to_the_first_rule_that_selects_it() -> None:
    first, second = Verdict(), Verdict()
    t = transformer(("$.ssn", first), ("$..ssn", second))
    out = await run(t, message(dumps({"ssn": "top", "a": {"ssn": "nested"}}), JSON))
    assert [v.value for v in first.calls[0][0]] == ["top"]
    assert [v.value for v in second.calls[0][0]] == ["nested"]
    assert json.loads(out.body) == {"ssn": "T:top", "a": {"ssn": "T:nested"}}


@pytest.mark.parametrize(
    ("doc", "what"),
    [({"ssn": {"n": "1"}}, "an object"), ({"ssn": ["1"]}, "an array")],
)
async def test_selecting_a_non_scalar_names_the_rule(doc: object, what: str) -> None:
    action = Verdict()
    t = transformer(("$.name", Verdict()), ("$.ssn", action))
    with pytest.raises(BadField) as info:
        await run(t, message(dumps(doc), JSON))
    assert str(info.value) == (
        f"policy: request[1] $.ssn: selects {what}; rules transform scalar values only"
    )
    assert (info.value.status, info.value.code, info.value.public) == (400, "bad_field", True)
    assert action.calls == []


@pytest.mark.parametrize("value", [1, 2.5, True, "s"])
async def test_scalars_of_every_type_reach_the_action(value: Scalar) -> None:
    action = Verdict()
    await run(transformer(("$.v", action)), message(dumps({"v": value}), JSON))
    assert action.calls[0][0][0].value == value


# --- decisions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "error", "text"),
    [
        ({"a": "deny1", "b": "x"}, Denied, "policy: request[0] $.a: denied (not allowed)"),
        ({"a": "x", "b": "bad1"}, BadField, "policy: request[1] $.b: invalid value (wrong shape)"),
        ({"a": "bad1", "b": "deny1"}, Denied, "policy: request[1] $.b: denied (not allowed)"),
        ({"a": "x", "b": "x"}, None, ""),
    ],
)
async def test_deny_beats_invalid_and_errors_name_the_rule_not_the_value(
    doc: dict[str, str], error: type[MessageError] | None, text: str
) -> None:
    t = transformer(("$.a", Verdict()), ("$.b", Verdict()))
    m = message(dumps(doc), JSON)
    if error is None:
        out = await run(t, m)
        assert json.loads(out.body) == {"a": "T:x", "b": "T:x"}
        return
    with pytest.raises(error) as info:
        await run(t, m)
    assert str(info.value) == text
    assert "deny1" not in str(info.value)
    assert "bad1" not in str(info.value)


async def test_response_errors_are_the_backends_fault_but_denials_stay_403() -> None:
    t = transformer(("$.ssn", Verdict()), direction="response")
    with pytest.raises(BadRequest) as bad:
        await run(t, message(b"{oops", JSON))
    assert (bad.value.status, bad.value.code) == (502, "bad_gateway")
    with pytest.raises(Denied) as denied:
        await run(t, message(b'{"ssn": "deny"}', JSON))
    assert denied.value.status == 403


async def test_action_returning_the_wrong_number_of_results_fails_closed() -> None:
    t = transformer(("$..ssn", Fixed("x", short=True)))
    with pytest.raises(
        MessageError, match=r"request\[0\] \$\.\.ssn: action returned 1 results for 2"
    ):
        await run(t, message(b'{"ssn": "1", "a": {"ssn": "2"}}', JSON))


@pytest.mark.parametrize(
    ("selector", "value", "m"),
    [
        ("$.ssn", float("inf"), message(b'{"ssn": "1"}', JSON)),
        ("$.ssn", float("nan"), message(b'{"ssn": "1"}', JSON)),
        ("header:x-ssn", "a\r\nInjected: yes", message(b"", ("X-SSN", "1"))),
        ("header:x-ssn", "a\x00", message(b"", ("X-SSN", "1"))),
    ],
)
async def test_action_output_a_field_cannot_hold_fails_closed(
    selector: str, value: Scalar, m: Message
) -> None:
    with pytest.raises(MessageError) as info:
        await run(transformer((selector, Fixed(value))), m)
    assert info.value.status == 500
    assert "Injected" not in str(info.value)


# --- concurrency and failures -----------------------------------------------------------


async def test_independent_rules_run_concurrently() -> None:
    started = [asyncio.Event(), asyncio.Event()]
    t = transformer(("$.a", Gate(started, 0)), ("header:x-b", Gate(started, 1)))
    out = await asyncio.wait_for(run(t, message(b'{"a": "1"}', JSON, ("X-B", "2"))), 4)
    assert json.loads(out.body) == {"a": "ok"}
    assert header_values(out.headers, "x-b") == ["ok"]


async def test_one_failing_action_fails_the_message_and_cancels_the_others() -> None:
    started = [asyncio.Event(), asyncio.Event()]
    slow, failing = Gate(started, 0), Gate(started, 1, fail=True)
    t = transformer(("$.a", slow), ("$.b", failing))
    with pytest.raises(RuntimeError, match="vault down"):
        await run(t, message(b'{"a": "1", "b": "2"}', JSON))
    assert slow.cancelled


async def test_a_single_failing_action_fails_the_message() -> None:
    started = [asyncio.Event()]
    with pytest.raises(RuntimeError, match="vault down"):
        await run(transformer(("$.a", Gate(started, 0, fail=True))), message(b'{"a": "1"}', JSON))


# --- content types, codings, limits ------------------------------------------------------


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


CODINGS = [
    ("gzip", gzip.compress, gzip.decompress),
    ("deflate", zlib.compress, zlib.decompress),
    ("deflate", _raw_deflate, lambda b: zlib.decompress(b, -15)),
    ("br", brotli.compress, brotli.decompress),
]


@pytest.mark.parametrize(("coding", "pack", "unpack"), CODINGS)
async def test_encoded_bodies_are_decoded_and_re_encoded_the_same_way(
    coding: str, pack: Any, unpack: Any
) -> None:
    plain = dumps({"ssn": SECRET, "pad": "x" * 1000})
    body = pack(plain)
    m = message(
        body,
        JSON,
        ("Content-Encoding", coding),
        ("Content-Length", str(len(body))),
        ("Transfer-Encoding", "chunked"),
    )
    out = await run(transformer(("$.ssn", Verdict())), m)
    assert json.loads(unpack(out.body)) == {"ssn": f"T:{SECRET}", "pad": "x" * 1000}
    assert header_values(out.headers, "content-encoding") == [coding]
    assert header_values(out.headers, "content-length") == [str(len(out.body))]
    assert header_values(out.headers, "transfer-encoding") == []


@pytest.mark.parametrize(("coding", "pack", "unpack"), CODINGS)
async def test_encoded_bodies_no_rule_changes_keep_their_exact_bytes(
    coding: str, pack: Any, unpack: Any
) -> None:
    body = pack(dumps({"name": "x"}))
    out = await run(
        transformer(("$.ssn", Verdict())), message(body, JSON, ("Content-Encoding", coding))
    )
    assert out.body is body
    assert not out.body_changed


@pytest.mark.parametrize(("coding", "pack", "unpack"), CODINGS)
async def test_decompression_bomb_is_413(coding: str, pack: Any, unpack: Any) -> None:
    bomb = pack(b'{"a": "' + b"0" * (20 * 1024 * 1024) + b'"}')
    t = transformer(("$.ssn", Verdict()))
    with pytest.raises(PayloadTooLarge) as info:
        await run(t, message(bomb, JSON, ("Content-Encoding", coding), limit=1024 * 1024))
    assert info.value.status == 413
    assert str(info.value) == "policy: request[0] $.ssn: decoded body is over the limit"


async def test_body_over_the_limit_as_received_is_413() -> None:
    body = dumps({"ssn": "x" * 100})
    t = transformer(("$.ssn", Verdict()))
    assert (await run(t, message(body, JSON, limit=len(body)))).body_changed
    with pytest.raises(PayloadTooLarge, match="body is over the limit"):
        await run(t, message(body, JSON, limit=len(body) - 1))


@pytest.mark.parametrize(
    ("rules", "headers", "body", "error", "reason"),
    [
        (["$.ssn"], [("Content-Type", "text/plain")], b"ssn=1", UnsupportedMediaType, "reads this"),
        (["$.ssn"], [], b'{"ssn": "1"}', UnsupportedMediaType, "no content-type"),
        (["$.ssn"], [FORM], b"ssn=1", UnsupportedMediaType, "reads this"),
        (["form:ssn"], [JSON], b'{"ssn": "1"}', UnsupportedMediaType, "reads this"),
        (
            ["$.ssn"],
            [("Content-Type", "application/json; charset=latin-1")],
            b"{}",
            UnsupportedMediaType,
            "charset",
        ),
        (
            ["$.ssn"],
            [JSON, ("Content-Encoding", "zstd")],
            b"{}",
            UnsupportedMediaType,
            "content-encoding",
        ),
        (["$.ssn"], [JSON, JSON], b"{}", BadRequest, "more than one content-type"),
        (
            ["$.ssn"],
            [("Content-Type", "application/")],
            b"{}",
            BadRequest,
            "content-type is malformed",
        ),
        (["$.ssn"], [JSON], b'{"ssn": 1', BadRequest, "not valid json"),
        (["$.ssn"], [JSON], b'{"ssn": "1", "ssn": "2"}', BadRequest, "repeats a member name"),
        (["$.ssn"], [JSON, ("Content-Encoding", "gzip")], b"not gzip", BadRequest, "corrupt"),
        (["form:ssn"], [FORM], b"ssn=%zz", BadRequest, "percent escape"),
        (
            ["form:ssn"],
            [("Content-Type", "multipart/form-data")],
            b"--x--",
            BadRequest,
            "boundary is missing",
        ),
        (
            ["form:ssn"],
            [("Content-Type", "multipart/form-data; boundary=x")],
            b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--",
            BadRequest,
            "no name",
        ),
    ],
)
async def test_unreadable_bodies_fail_naming_the_first_body_rule(
    rules: list[str],
    headers: list[tuple[str, str]],
    body: bytes,
    error: type[MessageError],
    reason: str,
) -> None:
    t = transformer(("header:x-a", Verdict()), *((r, Verdict()) for r in rules))
    with pytest.raises(error) as info:
        await run(t, message(body, *headers))
    assert str(info.value).startswith(f"policy: request[1] {rules[0]}: ")
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "text/plain")],
        [],
        [("Content-Type", "image/png"), ("Content-Encoding", "zstd")],
    ],
)
async def test_without_body_rules_any_body_passes_untouched_and_query_rules_apply(
    headers: list[tuple[str, str]],
) -> None:
    t = transformer(("query:card", Verdict()))
    assert not t.needs_body
    body = b"\x00 whatever bytes \xff"
    out = await run(t, message(body, *headers, query="card=4111&x=%41", limit=1))
    assert out.body is body
    assert out.query == "card=T%3A4111&x=%41"


async def test_empty_body_with_body_rules_passes() -> None:
    action = Verdict()
    out = await run(transformer(("$.ssn", action)), message(b"", ("Content-Type", "text/plain")))
    assert action.calls == []
    assert out.body == b""
    assert not out.body_changed


async def test_one_route_can_read_json_and_forms() -> None:
    t = transformer(("$.ssn", Verdict()), ("form:ssn", Verdict()))
    assert t.body_kinds == {"json", "urlencoded", "multipart"}
    assert (await run(t, message(b"ssn=1", FORM))).body == b"ssn=T%3A1"
    assert (await run(t, message(b'{"ssn": "1"}', JSON))).body == b'{"ssn":"T:1"}'


# --- forms, query, headers -------------------------------------------------------------


async def test_urlencoded_form_keeps_order_repeats_and_untouched_pairs() -> None:
    action = Verdict()
    t = transformer(("form:ssn", action))
    out = await run(t, message(b"a=%41&ssn=1&b=c+d&ssn=drop&ssn=2", FORM))
    assert [v.value for v in action.calls[0][0]] == ["1", "drop", "2"]
    assert out.body == b"a=%41&ssn=T%3A1&b=c+d&ssn=T%3A2"


B = "XyZ"
MULTIPART = ("Content-Type", f"multipart/form-data; boundary={B}")
PNG = b"\x89PNG\r\n\x1a\n\xff\x00--XyZ-not-a-delimiter\r\n"


def multipart(*parts: tuple[str, bytes, bool]) -> bytes:
    out = b""
    for name, data, is_file in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="f.png"' if is_file else "")
        out += f"--{B}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{B}--\r\n".encode()


async def test_multipart_fields_transformed_and_file_bytes_untouched() -> None:
    body = multipart(("ssn", b"1", False), ("photo", PNG, True), ("ssn", b"drop", False))
    out = await run(transformer(("form:ssn", Verdict())), message(body, MULTIPART))
    assert out.body == multipart(("ssn", b"T:1", False), ("photo", PNG, True))
    assert header_values(out.headers, "content-length") == [str(len(out.body))]


async def test_rule_naming_a_file_part_fails() -> None:
    body = multipart(("photo", PNG, True))
    with pytest.raises(BadField, match=r"request\[0\] form:photo: selects a file part"):
        await run(transformer(("form:photo", Verdict())), message(body, MULTIPART))


async def test_query_rules_replace_remove_and_refuse_malformed() -> None:
    t = transformer(("query:card", Verdict()), ("query:ssn", Verdict()))
    out = await run(t, message(query="card=4111&ssn=drop&z=1"))
    assert out.query == "card=T%3A4111&z=1"
    with pytest.raises(BadRequest, match=r"request\[0\] query:card: form text has a bad percent"):
        await run(t, message(query="card=%G1"))


async def test_header_rules_see_every_line_case_insensitively() -> None:
    t = transformer(("header:X-SSN", Verdict()))
    m = message(b"", ("x-ssn", "1"), ("Accept", "*/*"), ("X-Ssn", "drop"), ("X-SSN", "2"))
    out = await run(t, m)
    assert out.headers == (("x-ssn", "T:1"), ("Accept", "*/*"), ("X-SSN", "T:2"))


@pytest.mark.parametrize(("value", "text"), [(None, ""), (True, "true"), (12, "12"), (1.5, "1.5")])
async def test_text_fields_take_any_scalar_as_text(value: Scalar, text: str) -> None:
    out = await run(transformer(("form:a", Fixed(value))), message(b"a=1", FORM))
    assert out.body == f"a={text}".encode()


# --- properties -------------------------------------------------------------------------

ssn_values = st.sampled_from(["1", "deny", "bad", "drop", "22"])
documents = st.recursive(
    st.one_of(ssn_values, st.integers(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["ssn", "a", "b", "items"]), inner, max_size=4),
    ),
    max_leaves=15,
)


def _reorder(value: object) -> object:
    if isinstance(value, dict):
        return {k: _reorder(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


async def _outcome(t: MessageTransformer, doc: object) -> tuple[str, object]:
    try:
        out = await run(t, message(dumps(doc), JSON))
    except MessageError as e:
        return type(e).__name__, str(e)
    return "ok", json.loads(out.body)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents)
@example({"a": {"ssn": []}, "b": {"ssn": {}}})  # two wrong shapes: the error names one by path
def test_decisions_do_not_depend_on_member_order(doc: object) -> None:
    t = transformer(("$.ssn", Verdict()), ("$..ssn", Verdict()), ("$.items[*].a", Verdict()))

    async def both() -> tuple[tuple[str, object], tuple[str, object]]:
        return await _outcome(t, doc), await _outcome(t, _reorder(doc))

    straight, flipped = asyncio.run(both())
    assert straight == flipped


@settings(max_examples=60)
@given(documents, st.sampled_from([None, "gzip", "br", "deflate"]))
def test_bodies_nothing_changed_in_stay_byte_identical(doc: object, coding: str | None) -> None:
    plain = json.dumps(doc, indent=1).encode()
    body = {
        None: lambda b: b,
        "gzip": gzip.compress,
        "br": brotli.compress,
        "deflate": zlib.compress,
    }[coding](plain)
    headers = [JSON] + ([("Content-Encoding", coding)] if coding else [])
    t = transformer(("$.nothing.here", Verdict()), ("$..absent", Verdict()), ("form:x", Verdict()))
    out = asyncio.run(run(t, message(body, *headers)))
    assert out.body == body
    assert not out.body_changed
    assert out.headers == tuple(headers)
