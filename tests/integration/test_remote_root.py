"""End to end: `tokengate keys ...` processes whose keys.root is `remote:` a running KMS root API."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kms.auth import new_credential
from tests.conftest import free_port
from tests.kms.root_support import RootApi, running_root_api

ENV = "TG_TEST_KMS_CREDENTIAL"


@dataclass(frozen=True)
class Gateway:
    """A gateway config whose keyring's root is the KMS at ``url``."""

    dir: Path
    config: Path

    @property
    def keyring(self) -> Path:
        return self.dir / "data" / "kms" / "keyring.json"

    async def keys(self, *args: str, credential: str) -> tuple[int, str]:
        """Run ``python -m proxy.cli keys ARGS --config G``: (exit status, stdout + stderr)."""
        env = {**os.environ, ENV: credential}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy.cli", "keys", *args, "--config", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
            cwd=self.dir,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode()


def gateway_for(directory: Path, url: str) -> Gateway:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "gateway.yaml"
    config.write_text(
        "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"
        "data_dir: data\n"
        f"keys:\n  root: 'remote:{url};credential-env={ENV}'\n"
    )
    return Gateway(directory, config)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[RootApi]:
    async with running_root_api(tmp_path / "kms") as running:
        yield running


async def test_keys_list_rotate_and_a_destroyed_kwk_end_to_end(
    api: RootApi, tmp_path: Path
) -> None:
    gw = gateway_for(tmp_path / "gw", api.url)
    status, out = await gw.keys("list", credential=api.gateway)
    assert status == 0, out
    assert f"root: remote:{api.url}" in out
    assert api.auditor.find("kms.root_create", client="gw-1", version=1, result="ok")
    backup = gw.keyring.read_bytes()

    status, out = await gw.keys("rotate", "--kwk", credential=api.gateway)
    assert status == 0, out
    assert api.auditor.find("kms.root_create", client="gw-1", version=2, result="ok")
    assert api.auditor.find("kms.root_destroy", client="gw-1", version=1, result="ok")
    status, out = await gw.keys("list", credential=api.gateway)
    assert status == 0, out

    gw.keyring.write_bytes(backup)  # an old keyring copy, wrapped under the destroyed KWK v1
    status, out = await gw.keys("list", credential=api.gateway)
    assert status != 0
    assert "kwk v1 is destroyed" in out
    assert "Traceback" not in out
    assert api.gateway not in out


async def test_a_refused_credential_and_a_down_kms_stop_the_command(
    api: RootApi, tmp_path: Path
) -> None:
    gw = gateway_for(tmp_path / "gw", api.url)
    stranger = new_credential()
    status, out = await gw.keys("list", credential=stranger)
    assert status != 0
    assert "refused the credential (401 unauthorized" in out
    assert stranger not in out
    assert not gw.keyring.exists()  # nothing was made without the KMS

    down = gateway_for(tmp_path / "down", f"http://127.0.0.1:{free_port()}")
    status, out = await down.keys("list", credential=api.gateway)
    assert status != 0
    assert "is unreachable" in out
    assert "Traceback" not in out
