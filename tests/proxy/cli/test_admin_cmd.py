"""``tokengate admin key create``: the key once on stdout, its config line on stderr."""

from __future__ import annotations

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from proxy.adminapi.auth import authenticate
from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.keys import Role, is_api_key
from proxy.cli import admin_cmd


def _run(*args: str) -> Result:
    group = click.Group()
    admin_cmd.register(group)
    return CliRunner().invoke(group, ["admin", "key", "create", *args])


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
def test_create_prints_key_and_config_line(role: str) -> None:
    result = _run("--name", "ci-deploy", "--role", role)
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert is_api_key(key)
    assert "not shown again" in result.stderr
    assert key not in result.stderr
    line = next(x for x in result.stderr.splitlines() if x.startswith("- "))
    config = AdminApiConfig.model_validate({"keys": yaml.safe_load(line)})
    found = authenticate([f"Bearer {key}"], config.key_table())
    assert found.name == "ci-deploy"
    assert found.role is Role(role)


def test_every_key_is_new() -> None:
    keys = {_run("--name", "a", "--role", "admin").stdout for _ in range(3)}
    assert len(keys) == 3


@pytest.mark.parametrize(
    "args",
    [
        ("--name", "Alice", "--role", "admin"),
        ("--name", "-x", "--role", "admin"),
        ("--name", "a" * 65, "--role", "admin"),
        ("--name", "alice", "--role", "root"),
        ("--name", "alice"),
        ("--role", "admin"),
    ],
)
def test_refuses_bad_names_and_roles(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
