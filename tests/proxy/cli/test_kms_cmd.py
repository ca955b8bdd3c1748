"""``tokengate kms split|unseal|seal|status`` with a real sealed gateway process and shares."""

from __future__ import annotations

import asyncio
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from kms_client.config import KeysConfig
from kms_client.manager import KeyManager
from kms_client.opening import open_key_manager
from proxy.cli import keys_cmd, kms_cmd
from tests.kms_client.support import RecordingAuditor

UPSTREAM = "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"


def _sealed(manager: KeyManager) -> bool:
    return manager.is_sealed  # a call, so mypy does not narrow across awaits


def _cli() -> click.Group:
    group = click.Group()
    keys_cmd.register(group)
    kms_cmd.register(group)
    return group


def _run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(_cli(), [*args, "--config", str(config)], input=input)


@pytest.fixture
def control_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tgm", dir="/tmp"))  # unix socket paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(tmp_path: Path, root: str, control_dir: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        UPSTREAM + f"data_dir: data\nkeys:\n  root: '{root}'\n  control_dir: '{control_dir}'\n"
    )
    return path


def _split(tmp_path: Path, control_dir: Path, root: str = "local:shamir") -> list[Path]:
    config = _config(tmp_path, root, control_dir)
    result = _run(config, "kms", "split", "-n", "3", "-k", "2", "--out-dir", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "s").glob("share-*.txt"))
    assert len(files) == 3
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert f.read_text().startswith("tgshare1-")
        assert f.read_text().strip() not in result.output  # shares go to files only
    return files


def test_split_a_dev_root_then_run_keys_commands_with_prompted_shares(
    tmp_path: Path, control_dir: Path
) -> None:
    config = _config(tmp_path, "local:", control_dir)
    assert _run(config, "keys", "rotate", "tokenize").exit_code == 0
    files = _split(tmp_path, control_dir, root="local:")
    (tmp_path / "data" / "kms" / "root.key").unlink()
    config = _config(tmp_path, "local:shamir", control_dir)
    shares = "".join(f.read_text() for f in files[1:])
    result = _run(config, "keys", "list", input=shares)
    assert result.exit_code == 0, result.output
    assert "* tokenize" in result.output
    assert "v2" in result.output
    for f in files:
        assert f.read_text().strip() not in result.output  # hidden input


def test_wrong_share_is_refused_clearly(tmp_path: Path, control_dir: Path) -> None:
    files = _split(tmp_path, control_dir)
    config = _config(tmp_path, "local:shamir", control_dir)
    bad = files[0].read_text().strip()[:-1] + "x\n"
    result = _run(config, "keys", "list", input=bad)
    assert result.exit_code == 1
    assert "share 1 has a bad checksum" in result.output


def test_split_refuses_a_used_out_dir(tmp_path: Path, control_dir: Path) -> None:
    _split(tmp_path, control_dir)
    config = _config(tmp_path, "local:shamir", control_dir)
    result = _run(config, "kms", "split", "-n", "3", "-k", "2", "--out-dir", str(tmp_path / "s"))
    assert result.exit_code == 1
    assert "already holds shares" in result.output


def test_no_running_gateway(tmp_path: Path, control_dir: Path) -> None:
    result = _run(_config(tmp_path, "local:", control_dir), "kms", "status")
    assert result.exit_code == 1
    assert "no running gateway found" in result.output


async def test_unseal_seal_status_of_a_running_gateway(tmp_path: Path, control_dir: Path) -> None:
    files = await asyncio.to_thread(_split, tmp_path, control_dir)
    config = _config(tmp_path, "local:shamir", control_dir)
    keys = KeysConfig(root="local:shamir", control_dir=str(control_dir))
    auditor = RecordingAuditor()
    gateway = await open_key_manager(
        keys, data_dir=tmp_path / "data", auditor=auditor, production=True
    )
    try:
        assert _sealed(gateway)
        status = await asyncio.to_thread(_run, config, "kms", "status")
        assert status.exit_code == 0
        assert ": sealed" in status.output

        one_short = await asyncio.to_thread(
            _run, config, "kms", "unseal", "--share-file", str(files[0]), input="\n"
        )
        assert one_short.exit_code != 0
        assert _sealed(gateway)

        result = await asyncio.to_thread(
            _run,
            config,
            "kms",
            "unseal",
            "--share-file",
            str(files[0]),
            "--share-file",
            str(files[2]),
            "--actor",
            "ops:carol",
        )
        assert result.exit_code == 0, result.output
        assert ": unsealed (keyring v1)" in result.output
        assert not _sealed(gateway)
        assert auditor.find("keyring.unseal", result="ok")[0]["actor"] == "ops:carol"

        result = await asyncio.to_thread(_run, config, "kms", "seal", "--yes")
        assert result.exit_code == 0, result.output
        assert _sealed(gateway)
        assert auditor.find("keyring.seal")[0]["reason"] == "operator"
    finally:
        await gateway.close()
