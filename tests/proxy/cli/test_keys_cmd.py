"""``tokengate keys ...`` against a real keyring and the real audit log under a temp data dir."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from kms_client.keyring import KeyState
from kms_client.secrets import WrappedSecrets
from proxy.cli import keys_cmd
from tests.kms_client.support import open_manager

UPSTREAM = "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"


def _cli() -> click.Group:
    group = click.Group()
    keys_cmd.register(group)
    return group


def _run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(_cli(), ["keys", *args, "--config", str(config)], input=input)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(UPSTREAM + "data_dir: data\nkeys:\n  keyring_name: cli-test\n")
    return path


def _keyring_state(tmp_path: Path, purpose: str, version: int) -> KeyState:
    async def read() -> KeyState:
        m = await open_manager(tmp_path / "data", keyring_name="cli-test")
        try:
            key = m.keyring().ring(purpose).get(version)
            assert key is not None
            return key.state
        finally:
            await m.close()

    return asyncio.run(read())


def _audit_text(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in (tmp_path / "data" / "audit").iterdir())


def test_list_shows_every_purpose_and_primary(config: Path) -> None:
    result = _run(config, "list")
    assert result.exit_code == 0, result.output
    assert "root: local:dev" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("*")]
    assert {line.split()[1] for line in lines} >= {"tokenize", "index", "audit-checkpoint"}
    doc = json.loads(_run(config, "list", "--json").output)
    signing = [k for k in doc["keys"] if k["purpose"] == "upstream-signing"]
    assert signing[0]["kid"]
    assert doc["keyring_version"] == 1


def test_rotate_revoke_destroy_rewrap(config: Path, tmp_path: Path) -> None:
    async def seed() -> None:
        m = await open_manager(tmp_path / "data", keyring_name="cli-test")
        for i in range(7):
            await WrappedSecrets(m).put(f"u{i}", b"seed")
        await m.close()

    asyncio.run(seed())
    result = _run(config, "rotate", "mfa-secrets", "--actor", "cli:tester")
    assert result.exit_code == 0, result.output
    assert "mfa-secrets: primary is now v2" in result.output

    result = _run(config, "revoke", "mfa-secrets", "1", input="n\n")
    assert result.exit_code == 1
    assert "secrets: 7 item(s) under this version" in result.output
    assert _keyring_state(tmp_path, "mfa-secrets", 1) is KeyState.DECRYPT_ONLY

    result = _run(config, "rewrap", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert "secrets: 7 rewrapped, 0 unreadable" in result.output

    result = _run(config, "revoke", "mfa-secrets", "1", input="y\n")
    assert result.exit_code == 0, result.output
    assert "secrets: 0 item(s)" in result.output
    assert _keyring_state(tmp_path, "mfa-secrets", 1) is KeyState.REVOKED

    result = _run(config, "destroy", "mfa-secrets", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert "old keyring copies (backups, Redis AOF, PostgreSQL WAL) stop working" in result.output
    assert _keyring_state(tmp_path, "mfa-secrets", 1) is KeyState.DESTROYED

    audit = _audit_text(tmp_path)
    assert '"actor":"cli:tester"' in audit
    for event in ("key.rotate", "key.revoke", "key.destroy", "keyring.rewrap"):
        assert f'"{event}"' in audit


def test_rotate_kwk(config: Path) -> None:
    result = _run(config, "rotate", "--kwk")
    assert result.exit_code == 0, result.output
    assert "kwk now v2; old kwk destroyed" in result.output


@pytest.mark.parametrize("args", [("rotate",), ("rotate", "tokenize", "--kwk")])
def test_rotate_needs_exactly_one_target(config: Path, args: tuple[str, ...]) -> None:
    result = _run(config, *args)
    assert result.exit_code == 2
    assert "give a PURPOSE or --kwk" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rotate", "nope"), "kms: unknown purpose 'nope'"),
        (("revoke", "tokenize", "1", "--yes"), "it is the primary; rotate first"),
        (("destroy", "tokenize", "9", "--yes"), "has no version 9"),
        (("rewrap", "--source", "vaults"), "unknown rewrap source(s): vaults"),
    ],
)
def test_errors_are_one_line_without_traceback(config: Path, args, message: str) -> None:
    result = _run(config, *args)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_keys_section_names_the_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(UPSTREAM + "keys:\n  purposes:\n    index:\n      max_age_days: 3\n")
    result = _run(path, "list")
    assert result.exit_code == 1
    assert (
        "gateway.yaml: keys: purposes.index: prf keys (index, convergent, hash) never rotate"
        in result.output
    )


def test_production_refuses_the_dev_root(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(UPSTREAM + "mode: production\n")
    result = _run(path, "list")
    assert result.exit_code == 1
    assert "production mode refuses the development root" in result.output


def test_output_and_audit_hold_no_key_material(config: Path, tmp_path: Path) -> None:
    out = _run(config, "list", "--json").output + _run(config, "rotate", "tokenize").output

    async def material() -> list[bytes]:
        m = await open_manager(tmp_path / "data", keyring_name="cli-test")
        try:
            return [k.material for r in m.keyring().purposes.values() for k in r.keys if k.material]
        finally:
            await m.close()

    text = out + _audit_text(tmp_path)
    for secret in asyncio.run(material()):
        assert secret.hex() not in text
        assert base64.b64encode(secret).decode() not in text
