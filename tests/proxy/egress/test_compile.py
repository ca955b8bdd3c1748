"""Egress routes at load: what is refused (with where), the allow list, route matching."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from policy.compile import compile_classes
from policy.errors import PolicyError
from policy.model import PolicyFile
from policy.yamlio import load_model
from proxy.egress.compile import EgressTable, compile_egress, load_egress
from proxy.egress.config import EgressConfig
from proxy.egress.model import EgressPolicyFile
from tests.proxy.egress.conftest import CLASSES

GOOD = """
egress:
  - name: pay
    match: {host: api.pay.example, methods: [POST], prefix: /v1/}
    release: {classes: [pan], max_values: 2}
    rate_limit: {values: 10, window: 1m}
    request:
      - {field: $.card, action: detokenize, class: pan, allow: {roles: [payments]}}
    response:
      - {field: $.ssn, action: tokenize, class: ssn}
  - name: kyc
    match: {host: "*.kyc.example", prefix: /}
    port: 8443
  - name: pay-reads
    match: {host: api.pay.example, methods: [GET], path: "/v1/charges/{id}"}
"""


def _classes(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "classes.yaml"
    path.write_text(textwrap.dedent(CLASSES))
    return dict(compile_classes([("c", load_model(PolicyFile, path, label="c"))]))


def _table(tmp_path: Path, text: str) -> EgressTable:
    (tmp_path / "egress").mkdir(exist_ok=True)
    (tmp_path / "egress" / "routes.yaml").write_text(textwrap.dedent(text))
    classes = _classes(tmp_path)
    return load_egress(EgressConfig(), tmp_path, classes)  # type: ignore[arg-type]


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        _table(tmp_path, text)
    return info.value.problems


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("api.pay.example", 443, True),
        ("API.Pay.Example.", 443, True),
        ("api.pay.example", 8443, False),
        ("pay.example", 443, False),
        ("x.api.pay.example", 443, False),
        ("id.kyc.example", 8443, True),
        ("id.kyc.example", 443, False),
        ("a.b.kyc.example", 8443, False),
        ("kyc.example", 8443, False),
        (".kyc.example", 8443, False),
    ],
)
def test_allow_list(tmp_path: Path, host: str, port: int, allowed: bool) -> None:
    assert _table(tmp_path, GOOD).host_allowed(host, port) is allowed


@pytest.mark.parametrize(
    ("host", "port", "method", "path", "route"),
    [
        ("api.pay.example", 443, "POST", "/v1/charges", "pay"),
        ("api.pay.example", 443, "GET", "/v1/charges/ch_1", "pay-reads"),
        ("api.pay.example", 443, "GET", "/v1/other", None),
        ("api.pay.example", 443, "DELETE", "/v1/charges/ch_1", None),
        ("api.pay.example", 443, "POST", "/v2/charges", None),
        ("id.kyc.example", 8443, "PUT", "/anything", "kyc"),
        ("a.b.kyc.example", 8443, "PUT", "/anything", None),
        ("elsewhere.example", 443, "POST", "/v1/charges", None),
    ],
)
def test_route_matching(
    tmp_path: Path, host: str, port: int, method: str, path: str, route: str | None
) -> None:
    found = _table(tmp_path, GOOD).match(host, port, method, path)
    assert (found.name if found is not None else None) == route


def test_a_compiled_route_keeps_its_caps(tmp_path: Path) -> None:
    table = _table(tmp_path, GOOD)
    pay = table.routes["pay"]
    assert (pay.max_values, pay.port, pay.request is not None, pay.response is not None) == (
        2,
        443,
        True,
        True,
    )
    assert table.routes["kyc"].max_values == 0


def test_a_wildcard_host_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tokengate.egress"):
        _table(tmp_path, GOOD)
    assert "route 'kyc' releases to every host matching *.kyc.example" in caplog.text


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (
            'match: {host: "*", prefix: /}',
            "egress[0].match.host: host must be a name like",
        ),
        ("match: {prefix: /}", "egress[0].match: an egress route names its host"),
        (
            "match: {host: a.example, prefix: /}\nrelease: {classes: [pan], max_values: 1}",
            "egress[0]: egress route 'r' releases values: give it a rate_limit",
        ),
        (
            "match: {host: a.example, prefix: /}\n"
            "response: [{field: $.x, action: detokenize, class: pan, allow: {roles: [a]}}]",
            "egress[0].response: response[0]: egress response rules use hash, mask, redact, "
            "tokenize, not 'detokenize'",
        ),
        (
            "match: {host: a.example, prefix: /}\nrequest: [{field: $.x, action: tokenize, class: pan}]",
            "egress[0].request: request[0]: egress request rules use detokenize, hash, mask, "
            "redact, not 'tokenize'",
        ),
        (
            "match: {host: a.example, prefix: /}\n"
            "request: [{field: $.x, action: detokenize, class: pan, allow: {roles: [a]}}]",
            "egress[0].request[0]: class 'pan' is not released to this route",
        ),
        (
            "match: {host: a.example, prefix: /}\n"
            "release: {classes: [ssn], max_values: 1}\n"
            "rate_limit: {values: 1, window: 1s}\n"
            "request: [{field: $.x, action: detokenize, class: pan, allow: {roles: [a]}}]",
            "egress[0].request[0]: class 'pan' is not released to this route",
        ),
        (
            "match: {host: a.example, prefix: /}\n"
            "release: {classes: [pan], max_values: 1}\n"
            "rate_limit: {values: 1, window: 1s}\n"
            "request: [{field: $.x, action: detokenize, class: pan, allow: {roles: [a]}, "
            "otherwise: mask, mask: '{last4}'}]",
            "egress[0].request[0]: egress detokenize rules refuse what they cannot release",
        ),
        (
            "match: {host: a.example, prefix: /}\n"
            "response: [{field: $.x, action: tokenize, class: nope}]",
            "egress[0].response[0].class: unknown field class 'nope'",
        ),
        (
            "match: {host: a.example, prefix: /}\nrelease: {classes: [pan], max_values: 0}",
            "egress[0].release.max_values",
        ),
    ],
    ids=[
        "bare-star",
        "no-host",
        "release-without-rate",
        "detokenize-in-response",
        "tokenize-in-request",
        "class-without-release",
        "class-not-released",
        "otherwise-not-deny",
        "unknown-class",
        "zero-cap",
    ],
)
def test_refused_at_load(tmp_path: Path, route: str, problem: str) -> None:
    text = "egress:\n  - name: r\n" + textwrap.indent(route, "    ") + "\n"
    problems = _problems(tmp_path, text)
    assert any(problem in p for p in problems), problems
    assert all(p.startswith("egress/routes.yaml: ") for p in problems)


def test_names_are_unique_and_matches_unambiguous(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
        egress:
          - {name: a, match: {host: a.example, prefix: /}}
          - {name: a, match: {host: b.example, prefix: /}}
          - {name: b, match: {host: a.example, prefix: /}}
        """,
    )
    assert any("egress[1].name: route 'a' is already declared" in p for p in problems)
    assert any("routes 'a' and 'b' match the same requests" in p for p in problems)


def test_egress_detokenize_defaults_to_deny(tmp_path: Path) -> None:
    table = _table(tmp_path, GOOD)
    rules = table.routes["pay"].request
    assert rules is not None
    gate = rules.rules[0].action
    inner = gate._inner  # type: ignore[attr-defined]
    assert inner._otherwise == "deny"


def test_compile_without_files_allows_nothing() -> None:
    table = compile_egress([("x", EgressPolicyFile())], {}, max_body=1024)
    assert len(table) == 0
    assert not table.host_allowed("a.example", 443)


def test_the_example_egress_routes_compile() -> None:
    from proxy.cli.gatewayfile import load_gateway_file

    root = Path(__file__).resolve().parents[3] / "config"
    gf = load_gateway_file(root / "gateway.yaml")
    table = load_egress(gf.gateway.egress, root, gf.classes)
    assert set(table.routes) == {"payments-charges", "kyc-verify"}
    assert table.host_allowed("api.payments.example", 443)
