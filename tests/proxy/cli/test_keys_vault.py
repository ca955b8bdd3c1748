"""``tokengate keys rewrap|revoke|destroy`` and the vault: records move, impact counts include them.

Runs the real CLI (CliRunner) against a real keyring and the store gateway.yaml
names (a SQLite file, the shared Redis, the shared PostgreSQL), with a real
Vault beside it to tokenize before and detokenize after.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from proxy.cli import keys_cmd
from tests.proxy.cli.vaultkit import STORES, gateway_yaml, key_versions, opened_vault, vault_section
from vault.api import ClassSpec, DetokenizeItem, Revealed, TokenizeItem

EMAIL = ClassSpec("email")
VALUES = [f"user{i}@example.com" for i in range(7)]


def _run(config: Path, *args: str, input: str | None = None) -> Result:
    group = click.Group()
    keys_cmd.register(group)
    return CliRunner().invoke(group, ["keys", *args, "--config", str(config)], input=input)


def _tokenize(data_dir: Path, vault: dict[str, object]) -> list[str]:
    async def go() -> list[str]:
        async with opened_vault(data_dir, vault) as (v, _):
            out = await v.tokenize([TokenizeItem(x, EMAIL, "alice", "") for x in VALUES])
        return [t for t in out if isinstance(t, str)]

    return asyncio.run(go())


def _state(
    data_dir: Path, vault: dict[str, object], tokens: list[str]
) -> tuple[list[int], list[str | None]]:
    """(key version of every record, detokenized value of every token or None)."""

    async def go() -> tuple[list[int], list[str | None]]:
        async with opened_vault(data_dir, vault) as (v, store):
            versions = await key_versions(store)
            found = await v.detokenize([DetokenizeItem(t, EMAIL) for t in tokens])
        return versions, [r.value if isinstance(r, Revealed) else None for r in found]

    return asyncio.run(go())


@pytest.mark.parametrize("kind", STORES)
def test_rewrap_moves_vault_records_and_destroy_keeps_them(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    vault = vault_section(kind, request)
    config = gateway_yaml(tmp_path, vault)
    data_dir = tmp_path / "data"
    assert _run(config, "list").exit_code == 0  # creates the keyring
    tokens = _tokenize(data_dir, vault)
    assert len(tokens) == len(VALUES)
    assert _state(data_dir, vault, tokens)[0] == [1] * len(VALUES)

    result = _run(config, "rotate", "tokenize")
    assert result.exit_code == 0, result.output
    assert "tokenize: primary is now v2" in result.output

    result = _run(config, "destroy", "tokenize", "1", input="n\n")
    assert result.exit_code == 1  # declined: nothing destroyed
    assert f"- vault: {len(VALUES)} item(s) under this version" in result.output

    result = _run(config, "rewrap", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert f"vault: {len(VALUES)} rewrapped, 0 unreadable" in result.output
    versions, values = _state(data_dir, vault, tokens)
    assert versions == [2] * len(VALUES)
    assert values == VALUES

    result = _run(config, "destroy", "tokenize", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert "- vault: 0 item(s) under this version" in result.output
    assert _state(data_dir, vault, tokens) == ([2] * len(VALUES), VALUES)

    again = _run(config, "rewrap")
    assert again.exit_code == 0, again.output
    assert "vault: 0 rewrapped, 0 unreadable" in again.output


def test_without_rewrap_destroy_shreds_the_records(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    vault = vault_section("sqlite", request)
    config = gateway_yaml(tmp_path, vault)
    data_dir = tmp_path / "data"
    assert _run(config, "list").exit_code == 0
    tokens = _tokenize(data_dir, vault)
    assert _run(config, "rotate", "tokenize").exit_code == 0
    result = _run(config, "destroy", "tokenize", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert f"- vault: {len(VALUES)} item(s) under this version" in result.output
    versions, values = _state(data_dir, vault, tokens)
    assert versions == [1] * len(VALUES)
    assert values == [None] * len(VALUES)  # crypto-shredded: fail closed
    result = _run(config, "rewrap")
    assert f"vault: 0 rewrapped, {len(VALUES)} unreadable" in result.output


def test_source_selection(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    vault = vault_section("sqlite", request)
    config = gateway_yaml(tmp_path, vault)
    assert _run(config, "list").exit_code == 0
    _tokenize(tmp_path / "data", vault)
    assert _run(config, "rotate", "tokenize").exit_code == 0
    only_secrets = _run(config, "rewrap", "--source", "secrets")
    assert only_secrets.exit_code == 0, only_secrets.output
    assert "vault:" not in only_secrets.output
    only_vault = _run(config, "rewrap", "--source", "vault")
    assert only_vault.exit_code == 0, only_vault.output
    assert f"vault: {len(VALUES)} rewrapped" in only_vault.output
    assert "secrets:" not in only_vault.output
    unknown = _run(config, "rewrap", "--source", "vaults")
    assert unknown.exit_code == 2
    assert "unknown rewrap source(s): vaults" in unknown.output


def test_other_purposes_count_no_vault_records(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    vault = vault_section("sqlite", request)
    config = gateway_yaml(tmp_path, vault)
    assert _run(config, "list").exit_code == 0
    _tokenize(tmp_path / "data", vault)
    assert _run(config, "rotate", "mfa-secrets").exit_code == 0
    result = _run(config, "revoke", "mfa-secrets", "1", input="n\n")
    assert "vault:" not in result.output  # the vault store is not even opened


def test_unreachable_vault_store_fails_the_rewrap(tmp_path: Path, unused_port: int) -> None:
    config = gateway_yaml(
        tmp_path,
        {"url": f"redis://127.0.0.1:{unused_port}/0", "accept_volatile": True, "timeout": 0.5},
    )
    assert _run(config, "list").exit_code == 0
    result = _run(config, "rewrap")
    assert result.exit_code == 1
    assert result.output.startswith("Error: vault:")


def test_bad_vault_section_names_the_yaml_path(tmp_path: Path) -> None:
    config = gateway_yaml(tmp_path, {"url": "sqlite:v.db", "nope": 1})
    result = _run(config, "list")
    assert result.exit_code == 1
    assert "gateway.yaml: vault.nope: unknown key" in result.output
