"""``tokengate policy lint``: the same validation as start-up, with exit codes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from proxy.cli import _register, cli

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str) -> tuple[int, str, str]:
    _register()
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_example_config_lints_clean() -> None:
    code, out, _ = run("policy", "lint", str(ROOT / "config" / "gateway.yaml"))
    assert code == 0
    assert "ok" in out


def test_bad_policy_named_with_file_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "users.yaml"
    bad.write_text(
        "routes:\n"
        "  - {name: a, match: {path: /a}, allow_unauthenticated: true}\n"
        "  - {name: b, match: {path: /b}, allow_unauthenticated: true}\n"
        "  - {name: c, match: {path: '/api/users/{id'}, allow_unauthenticated: true}\n"
    )
    code, _, err = run("policy", "lint", str(bad))
    assert code == 1
    assert f"{bad}: routes[2].match.path: unbalanced '{{'" in err


def test_duplicates_across_files(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    route = "routes:\n  - {name: same, match: {prefix: /x}, allow_unauthenticated: true}\n"
    one.write_text(route)
    two.write_text(route.replace("/x", "/y"))
    code, _, err = run("policy", "lint", str(one), str(two))
    assert code == 1
    assert "route 'same' is already declared in" in err
    two.write_text(route.replace("same", "other"))
    code, _, err = run("policy", "lint", str(one), str(two))
    assert code == 1
    assert "match the same requests" in err
    two.write_text(route.replace("same", "other").replace("/x", "/y"))
    assert run("policy", "lint", str(one), str(two))[0] == 0


def test_gateway_with_unknown_upstream(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "r.yaml").write_text(
        "routes:\n  - {name: r, match: {prefix: /}, upstream: nowhere,"
        " allow_unauthenticated: true}\n"
    )
    gw = tmp_path / "gateway.yaml"
    gw.write_text("upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n")
    code, _, err = run("policy", "lint", str(gw))
    assert code == 1
    assert "policies/r.yaml: routes[0].upstream: unknown upstream 'nowhere'" in err


def test_field_rules_are_compiled_by_lint(tmp_path: Path) -> None:
    bad = tmp_path / "fields.yaml"
    bad.write_text(
        "classes:\n"
        "  ssn: {format: ssn, keep_last: 4}\n"
        "routes:\n"
        "  - name: a\n"
        "    match: {path: /a}\n"
        "    auth: {}\n"
        "    request:\n"
        "      - {field: $.ssn, action: tokenize, class: ssn}\n"
        "      - {field: $.card, action: tokenize, class: card}\n"
        "      - {field: $.x, action: no-such-action}\n"
    )
    code, _, err = run("policy", "lint", str(bad))
    assert code == 1
    assert "routes[0].request[1].class: unknown field class 'card'" in err
    assert "routes[0].request[2]" in err
    good = tmp_path / "good.yaml"
    good.write_text(bad.read_text().split("      - {field: $.card")[0])
    code, out, _ = run("policy", "lint", str(good))
    assert code == 0, out


_EGRESS_GATEWAY = (
    "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"
    "policies: [classes.yaml]\n"
    "egress:\n  policies: [egress/*.yaml]\n"
)
_EGRESS_ROUTE = (
    "egress:\n"
    "  - name: pay\n"
    "    match: {{host: {host}, prefix: /v1/}}\n"
    "    release: {{classes: [pan], max_values: 1}}\n"
    "    rate_limit: {{values: 10, window: 1m}}\n"
    "    request:\n"
    "      - {{field: $.card, action: detokenize, class: pan, allow: {{roles: [payments]}}}}\n"
)


def _egress_config(tmp_path: Path, host: str, *, section: bool = True) -> Path:
    (tmp_path / "classes.yaml").write_text("classes:\n  pan: {format: pan}\n")
    (tmp_path / "egress").mkdir()
    (tmp_path / "egress" / "pay.yaml").write_text(_EGRESS_ROUTE.format(host=host))
    gw = tmp_path / "gateway.yaml"
    text = _EGRESS_GATEWAY if section else _EGRESS_GATEWAY.split("egress:", maxsplit=1)[0]
    gw.write_text(text)
    return gw


def test_lint_compiles_the_egress_routes_gateway_yaml_names(tmp_path: Path) -> None:
    code, out, err = run("policy", "lint", str(_egress_config(tmp_path, "api.pay.example")))
    assert code == 0, err
    assert "1 egress routes" in out


def test_lint_refuses_what_egress_serve_refuses(tmp_path: Path) -> None:
    code, _, err = run("policy", "lint", str(_egress_config(tmp_path, '"*"')))
    assert code == 1
    assert "egress/pay.yaml: egress[0].match.host: host must be a name like" in err


def test_lint_reads_no_egress_files_without_an_egress_section(tmp_path: Path) -> None:
    code, out, err = run("policy", "lint", str(_egress_config(tmp_path, '"*"', section=False)))
    assert code == 0, err
    assert "egress routes" not in out
