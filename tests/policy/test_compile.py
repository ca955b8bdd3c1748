"""Compiling field rules across policy files: classes, actions, options, per-route transformers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from plugins.base import ActionContext, FieldAction, FieldClass, FieldResult, FieldValue, Subject
from plugins.mask import Mask
from plugins.redact import Redact
from plugins.registry import action_names
from plugins.tokenize import Tokenize
from policy.compile import compile_classes, compile_fields
from policy.errors import PolicyError
from policy.message import Message
from policy.model import PolicyFile
from policy.yamlio import load_model
from tokengate.errors import ConfigError

CLASSES = """
classes:
  ssn: {format: ssn, keep_last: 4, mask: '***-**-{last4}'}
  email: {format: deterministic, prefix: em}
"""

ROUTES = """
routes:
  - name: signup
    match: {path: /signup}
    allow_unauthenticated: true
    tenant: public
    request:
      - {field: $.ssn, action: tokenize, class: ssn}
      - {field: 'header:X-Email', action: tokenize, class: email}
      - {field: 'query:debug', action: redact, remove: true}
    response:
      - {field: $..ssn, action: mask, class: ssn}
  - name: headers-only
    match: {path: /h}
    auth: {}
    request:
      - {field: 'header:X-Card', action: redact}
  - name: plain
    match: {prefix: /}
    auth: {}
"""


def policies(tmp_path: Path, **files: str) -> list[tuple[str, PolicyFile]]:
    out = []
    for name, text in sorted(files.items()):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        label = f"policies/{name}.yaml"
        out.append((label, load_model(PolicyFile, path, label=label)))
    return out


def problems_of(tmp_path: Path, registry: Any = None, **files: str) -> list[str]:
    try:
        compile_fields(policies(tmp_path, **files), registry=registry)
    except PolicyError as e:
        return e.problems
    return []


def test_compiles_routes_with_real_actions_across_files(tmp_path: Path) -> None:
    fields = compile_fields(policies(tmp_path, a_classes=CLASSES, b_routes=ROUTES))
    assert set(fields) == {"signup", "headers-only", "plain"}
    signup = fields["signup"]
    assert signup.tenant == "public"
    assert signup.request is not None
    assert signup.response is not None
    assert signup.needs_request_body
    assert signup.needs_response_body
    assert [type(r.action) for r in signup.request.rules] == [Tokenize, Tokenize, Redact]
    assert [r.label for r in signup.request.rules] == ["request[0]", "request[1]", "request[2]"]
    assert isinstance(signup.response.rules[0].action, Mask)
    assert signup.response.direction == "response"
    only_headers = fields["headers-only"]
    assert only_headers.request is not None
    assert not only_headers.needs_request_body
    assert only_headers.response is None
    assert fields["plain"].request is None
    assert not fields["plain"].needs_request_body


async def test_compiled_response_rule_masks_with_the_class_mask(tmp_path: Path) -> None:
    fields = compile_fields(policies(tmp_path, a_classes=CLASSES, b_routes=ROUTES))
    response = fields["signup"].response
    assert response is not None
    none = cast(Any, None)
    ctx = ActionContext(
        route="signup",
        rule="?",
        direction="response",
        subject=Subject(),
        vault=none,
        keys=none,
        audit=none,
        limiter=none,
        now=0.0,
        request_id="r",
    )
    body = b'{"user": {"ssn": "123-45-6789"}}'
    out = await response.apply(
        Message(headers=(("Content-Type", "application/json"),), body=body, limit=1024), ctx
    )
    assert json.loads(out.body) == {"user": {"ssn": "***-**-6789"}}


def test_compile_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        compile_fields(policies(tmp_path, a=rule_route("{field: $.a, action: nope}")))


def test_each_rule_gets_its_own_action_instance(tmp_path: Path) -> None:
    text = """
routes:
  - name: r
    match: {path: /r}
    auth: {}
    request:
      - {field: $.a, action: redact}
      - {field: $.b, action: redact}
"""
    request = compile_fields(policies(tmp_path, r=text))["r"].request
    assert request is not None
    assert request.rules[0].action is not request.rules[1].action


def test_classes_compile_to_field_classes(tmp_path: Path) -> None:
    classes = compile_classes(policies(tmp_path, a=CLASSES))
    assert set(classes) == {"ssn", "email"}
    assert isinstance(classes["ssn"], FieldClass)
    assert classes["ssn"].mask == "***-**-{last4}"
    assert classes["email"].spec.format.prefix == "em"


def rule_route(*rules: str, key: str = "request") -> str:
    body = "".join(f"      - {r}\n" for r in rules)
    return f"routes:\n  - name: r\n    match: {{path: /r}}\n    auth: {{}}\n    {key}:\n{body}"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"a": CLASSES, "b": "classes:\n  ssn: {}\n"},
            ["policies/b.yaml: classes.ssn: class 'ssn' is already declared in policies/a.yaml"],
        ),
        (
            {"a": rule_route("{field: $.a, action: tokenize, class: card}")},
            [
                "policies/a.yaml: routes[0].request[0].class: unknown field class 'card' "
                "(declare it under classes:)"
            ],
        ),
        (
            {"a": rule_route("{field: $.a, action: encrypt}")},
            [
                "policies/a.yaml: routes[0].request[0].action: unknown action 'encrypt' "
                f"(known: {', '.join(sorted(action_names()))})"
            ],
        ),
        (
            {"a": rule_route("{field: 'query:q', action: redact}", key="response")},
            ["policies/a.yaml: routes[0].response[0].field: responses have no query string"],
        ),
        (
            {
                "a": rule_route(
                    "{field: $.a, action: redact}", "{field: \"$['a']\", action: mask, pattern: x}"
                )
            },
            [
                "policies/a.yaml: routes[0].request[1].field: same field as request[0], "
                "which takes every value it selects"
            ],
        ),
        (
            {"a": rule_route("{field: $.a, action: redact, colour: red}")},
            [
                "policies/a.yaml: routes[0].request[0]: redact: option 'colour': Extra inputs are not permitted"
            ],
        ),
        (
            {"a": rule_route("{field: $.a, action: tokenize}")},
            ["policies/a.yaml: routes[0].request[0]: tokenize: option 'class': Field required"],
        ),
        (
            {"a": rule_route("{field: $.a, action: mask}")},
            ["policies/a.yaml: routes[0].request[0]: mask: needs 'pattern' or a class with a mask"],
        ),
        (
            {
                "a": rule_route("{field: $.a, action: redact}"),
                "b": rule_route("{field: $.a, action: redact}"),
            },
            ["policies/b.yaml: routes[0].name: route 'r' is already declared"],
        ),
    ],
)
def test_mistakes_name_file_path_and_problem(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    assert problems_of(tmp_path, **files) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = rule_route(
        "{field: $.a, action: nope}",
        "{field: $.b, action: tokenize, class: nope}",
        "{field: $.c, action: redact}",
    )
    problems = problems_of(tmp_path, a=text, b="classes:\n  x: {}\n", c="classes:\n  x: {}\n")
    assert [p.split(": ")[1] for p in problems] == [
        "classes.x",
        "routes[0].request[0].action",
        "routes[0].request[1].class",
    ]


def test_the_same_field_in_each_direction_is_fine(tmp_path: Path) -> None:
    text = (
        rule_route("{field: $.a, action: redact}")
        + "    response:\n      - {field: $.a, action: redact}\n"
    )
    assert problems_of(tmp_path, a=text) == []


class Recording:
    """A registry double: records what the compiler hands to create_action."""

    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, object]]] = []

    def action_names(self) -> frozenset[str]:
        return frozenset({"probe"})

    def create_action(self, name: str, options: Mapping[str, object]) -> FieldAction:
        self.created.append((name, dict(options)))
        if options.get("fail"):
            raise ValueError("probe: option 'fail': refused")
        return _Probe()


class _Probe:
    name: ClassVar[str] = "probe"

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        return [FieldResult.remove() for _ in batch]


def test_options_reach_the_action_with_the_class_resolved(tmp_path: Path) -> None:
    registry = Recording()
    text = CLASSES + rule_route("{field: $.a, action: probe, class: ssn, level: 3, tags: [x]}")
    compile_fields(policies(tmp_path, a=text), registry=registry)
    [(name, options)] = registry.created
    assert name == "probe"
    assert options["level"] == 3
    assert options["tags"] == ["x"]
    cls = options["class"]
    assert isinstance(cls, FieldClass)
    assert cls.name == "ssn"


def test_action_option_errors_are_placed_at_the_rule(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, Recording(), a=rule_route("{field: $.a, action: probe, fail: true}")
    )
    assert problems == ["policies/a.yaml: routes[0].request[0]: probe: option 'fail': refused"]
