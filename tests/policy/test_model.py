"""Policy file validation: contradictions are refused with precise messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.errors import PolicyError
from policy.model import PolicyFile
from policy.yamlio import load_model


def lint(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    try:
        load_model(PolicyFile, path, label="policies/users.yaml")
    except PolicyError as e:
        return e.problems
    return []


OK_ROUTE = "  - name: ok\n    match: {path: /ok}\n    allow_unauthenticated: true\n"


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ("match: {path: '/api/users/{id'}", "routes[1].match.path: unbalanced '{'"),
        ("match: {path: '/api/users/id}'}", "routes[1].match.path: unbalanced '}'"),
        (
            "match: {path: '/u/x{id}'}",
            "routes[1].match.path: a parameter must be a whole path segment",
        ),
        ("match: {path: '/u/{id}/{id}'}", "routes[1].match.path: parameter 'id' appears twice"),
        ("match: {path: 'no-slash'}", "routes[1].match.path: a path must start with '/'"),
        ("match: {regex: '(['}", "routes[1].match.regex: invalid regex"),
        (
            "match: {path: /a, prefix: /b}",
            "routes[1].match: give exactly one of path, prefix or regex",
        ),
        ("match: {}", "routes[1].match: give exactly one of path, prefix or regex"),
        ("match: {path: /a, methods: []}", "routes[1].match.methods: methods cannot be empty"),
        ("match: {path: /a, methods: [BREW]}", "routes[1].match.methods[0]: Input should be"),
        ("match: {prefix: /a, host: '*'}", "routes[1].match.host: host must be a name"),
        ("match: {prefix: /a}\n    colour: red", "routes[1].colour: unknown key"),
        ("match: {prefix: /a}\n    max_body: lots", "routes[1].max_body"),
    ],
)
def test_bad_route_names_file_path_and_problem(tmp_path: Path, route: str, problem: str) -> None:
    text = f"routes:\n{OK_ROUTE}  - name: bad\n    {route}\n    allow_unauthenticated: true\n"
    problems = lint(tmp_path, text)
    assert any(p.startswith("policies/users.yaml: ") and problem in p for p in problems), problems


def test_route_without_auth_rule_is_refused(tmp_path: Path) -> None:
    problems = lint(tmp_path, "routes:\n  - name: x\n    match: {prefix: /}\n")
    assert problems == [
        "policies/users.yaml: routes[0]: route 'x' has no auth rule: add auth: or set "
        "allow_unauthenticated: true to serve it without a session"
    ]
    assert lint(tmp_path, f"routes:\n{OK_ROUTE}") == []


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (
            "auth: {roles: [a]}\n    allow_unauthenticated: true",
            "route 'x' is public (allow_unauthenticated) but has an auth rule",
        ),
        ("auth: {require: api_key, mfa: true}", "mfa, max_age and acr apply to sessions"),
        ("auth: {claims: {sub: alice}}", "claims cannot constrain sub"),
        ("auth: {max_age: soon}", "auth.max_age"),
    ],
)
def test_contradictory_auth_rules_fail_at_load(tmp_path: Path, route: str, problem: str) -> None:
    problems = lint(tmp_path, f"routes:\n  - name: x\n    match: {{prefix: /}}\n    {route}\n")
    assert any(problem in p for p in problems), problems


def test_auth_rule_accepted(tmp_path: Path) -> None:
    text = "routes:\n  - name: x\n    match: {prefix: /}\n    auth: {roles: [support], mfa: true, max_age: 10m}\n"
    assert lint(tmp_path, text) == []


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    problems = lint(tmp_path, f"routes:\n{OK_ROUTE}routes: []\n")
    assert problems
    assert "duplicate key 'routes'" in problems[0]


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    problems = lint(tmp_path, "routes: [\n")
    assert problems[0].startswith("policies/users.yaml: line ")
