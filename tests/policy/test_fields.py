"""Field classes and field rules in policy files: contradictions refused with precise messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.base import FieldClass
from policy.errors import PolicyError
from policy.fields import ClassDecl, FieldRule
from policy.model import PolicyFile
from policy.yamlio import load_model
from vault.api import ClassSpec, FormatKind, TokenFormat


def lint(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "fields.yaml"
    path.write_text(text)
    try:
        load_model(PolicyFile, path, label="policies/fields.yaml")
    except PolicyError as e:
        return e.problems
    return []


def load(tmp_path: Path, text: str) -> PolicyFile:
    path = tmp_path / "fields.yaml"
    path.write_text(text)
    return load_model(PolicyFile, path, label="policies/fields.yaml")


@pytest.mark.parametrize(
    ("decl", "problem"),
    [
        ("{format: opaque, prefix: Tok}", "classes.c.prefix: prefix must be 1-16 of a-z 0-9"),
        ("{format: opaque, prefix: tok_x}", "classes.c.prefix: prefix must be 1-16"),
        ("{format: opaque, prefix: 1tok}", "classes.c.prefix: prefix must be 1-16"),
        ("{format: opaque, prefix: abcdefghijklmnopq}", "classes.c.prefix: prefix must be 1-16"),
        ("{format: pan, prefix: card}", "classes.c: prefix applies to opaque and deterministic"),
        ("{format: uuid, prefix: u}", "classes.c: prefix applies to opaque and deterministic"),
        ("{format: ssn, luhn_valid: true}", "classes.c: luhn_valid applies to the pan format"),
        ("{format: opaque, on_mismatch: opaque}", "classes.c: on_mismatch applies to numeric"),
        ("{format: deterministic, keep_last: 4}", "classes.c: keep_first and keep_last apply"),
        ("{format: pan, keep_first: 9}", "classes.c: pan keeps at most the first 8 and last 4"),
        ("{format: pan, keep_last: 5}", "classes.c: pan keeps at most the first 8 and last 4"),
        ("{format: ssn, keep_first: 3, keep_last: 4}", "classes.c: ssn keeps at most 5 digits"),
        ("{format: numeric, keep_first: 9, keep_last: 8}", "numeric keeps at most 16 digits"),
        ("{format: pan, keep_first: -1}", "classes.c.keep_first: Input should be greater"),
        ("{format: cbc}", "classes.c.format: Input should be"),
        ("{ttl: 0.5s}", "classes.c.ttl: ttl must be at least 1s"),
        ("{ttl: soon}", "classes.c.ttl: expected a duration"),
        ("{mask: ''}", "classes.c.mask: mask must be 1-128 printable"),
        ("{mask: '***{middle2}'}", "classes.c.mask: mask pattern allows only {firstN} and {lastN}"),
        ("{mask: '{last99}'}", "classes.c.mask: mask placeholder {last99} must reveal"),
        ("{colour: red}", "classes.c.colour: unknown key"),
    ],
)
def test_bad_class_names_file_path_and_problem(tmp_path: Path, decl: str, problem: str) -> None:
    problems = lint(tmp_path, f"classes:\n  ok: {{}}\n  c: {decl}\n")
    assert any(p.startswith("policies/fields.yaml: ") and problem in p for p in problems), problems


@pytest.mark.parametrize("name", ["SSN", "1ssn", "ss-n", "a" * 33, ""])
def test_bad_class_name(tmp_path: Path, name: str) -> None:
    problems = lint(tmp_path, f"classes:\n  '{name}': {{}}\n")
    assert problems == [
        f"policies/fields.yaml: classes: class name '{name}' must be 1-32 of a-z 0-9 _ "
        "starting with a letter"
    ]


@pytest.mark.parametrize(
    ("decl", "spec", "mask"),
    [
        ("{}", ClassSpec("c"), None),
        (
            "{format: pan, keep_first: 6, keep_last: 4, luhn_valid: true, on_mismatch: opaque}",
            ClassSpec(
                "c",
                TokenFormat(
                    FormatKind.PAN, keep_first=6, keep_last=4, luhn_valid=True, on_mismatch="opaque"
                ),
            ),
            None,
        ),
        (
            "{format: ssn, keep_last: 4, mask: '***-**-{last4}', ttl: 1h}",
            ClassSpec("c", TokenFormat(FormatKind.SSN, keep_last=4), ttl=3600),
            "***-**-{last4}",
        ),
        (
            "{format: deterministic, prefix: em, ttl: 1.2}",
            ClassSpec("c", TokenFormat(FormatKind.DETERMINISTIC, prefix="em"), ttl=2),
            None,
        ),
        ("{format: uuid}", ClassSpec("c", TokenFormat(FormatKind.UUID)), None),
        (
            "{format: numeric, keep_first: 8, keep_last: 8}",
            ClassSpec("c", TokenFormat(FormatKind.NUMERIC, keep_first=8, keep_last=8)),
            None,
        ),
    ],
)
def test_good_class_maps_to_vault_spec(
    tmp_path: Path, decl: str, spec: ClassSpec, mask: str | None
) -> None:
    policy = load(tmp_path, f"classes:\n  c: {decl}\n")
    assert policy.classes["c"].field_class("c") == FieldClass(spec, mask=mask)


RULE_ROUTE = "  - name: r\n    match: {{path: /r}}\n    allow_unauthenticated: true\n    {key}:\n      - {rule}\n"


@pytest.mark.parametrize(
    ("key", "rule", "problem"),
    [
        (
            "request",
            "{field: ssn, action: redact}",
            "routes[0].request[0].field: a selector starts with",
        ),
        ("request", "{field: '$', action: redact}", "routes[0].request[0].field: '$' alone"),
        (
            "response",
            "{field: 'header:Content-Length', action: redact}",
            "response[0].field: header",
        ),
        (
            "request",
            "{field: $.a, action: Redact}",
            "routes[0].request[0].action: action must be a name",
        ),
        ("request", "{field: $.a}", "routes[0].request[0].action: Field required"),
        ("request", "{action: redact}", "routes[0].request[0].field: Field required"),
        (
            "request",
            "{field: $.a, action: tokenize, class: SSN}",
            "request[0].class: class must be",
        ),
    ],
)
def test_bad_rule_names_file_path_and_problem(
    tmp_path: Path, key: str, rule: str, problem: str
) -> None:
    problems = lint(tmp_path, "routes:\n" + RULE_ROUTE.format(key=key, rule=rule))
    assert any(p.startswith("policies/fields.yaml: ") and problem in p for p in problems), problems


def test_rule_keeps_canonical_selector_class_and_options(tmp_path: Path) -> None:
    rule = "{field: 'header:X-Card', action: mask, class: pan, pattern: '{last4}', extra: [1]}"
    policy = load(tmp_path, "routes:\n" + RULE_ROUTE.format(key="request", rule=rule))
    parsed = policy.routes[0].request[0]
    assert (parsed.field, parsed.action, parsed.field_class) == ("header:x-card", "mask", "pan")
    assert parsed.options == {"pattern": "{last4}", "extra": [1]}
    assert FieldRule.model_validate({"field": "$.a", "action": "redact"}).options == {}


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (
            "auth: {}\n    tenant: acme",
            "routes[0]: route 'r' names a tenant but is not public",
        ),
        (
            "allow_unauthenticated: true\n    tenant: 'a b'",
            "routes[0].tenant: tenant must be 1-64",
        ),
        (
            "allow_unauthenticated: true\n    websocket: true\n    request: [{field: $.a, action: redact}]",
            "routes[0]: route 'r' allows websocket upgrades, whose messages field rules cannot read",
        ),
    ],
)
def test_route_field_contradictions(tmp_path: Path, route: str, problem: str) -> None:
    problems = lint(tmp_path, f"routes:\n  - name: r\n    match: {{path: /r}}\n    {route}\n")
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "route",
    [
        "allow_unauthenticated: true\n    tenant: acme",
        "allow_unauthenticated: true\n    websocket: true",
        "auth: {}\n    request: [{field: $.a, action: redact}]\n    response: [{field: $.b, action: redact}]",
    ],
)
def test_route_field_allowed_twins(tmp_path: Path, route: str) -> None:
    assert lint(tmp_path, f"routes:\n  - name: r\n    match: {{path: /r}}\n    {route}\n") == []


def test_class_decl_defaults() -> None:
    assert ClassDecl().field_class("email") == FieldClass(ClassSpec("email"))
