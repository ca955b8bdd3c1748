"""End to end: `tokengate keys ...` processes whose keys.root is `remote:` a KMS.

The KMS is either the root API in this test's event loop (to read its audit
events directly) or a real `tokengate kms serve` process over HTTPS.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
import yaml

from kms.auth import credential_digest, new_credential
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


def gateway_for(directory: Path, url: str, *extra: str) -> Gateway:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "gateway.yaml"
    root = ";".join((f"remote:{url}", f"credential-env={ENV}", *extra))
    config.write_text(
        "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"
        "data_dir: data\n"
        f"keys:\n  root: '{root}'\n"
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


@dataclass(frozen=True)
class KmsProcess:
    """A running `tokengate kms serve` over HTTPS: its URL, CA file and data dir."""

    proc: asyncio.subprocess.Process
    url: str
    ca: Path
    data_dir: Path

    async def stop(self) -> str:
        """SIGTERM, wait, and return what it wrote to stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 60)
        assert self.proc.returncode == 0, err.decode()
        return err.decode()


async def start_kms(directory: Path, credential: str) -> KmsProcess:
    """`python -m proxy.cli kms serve` with TLS from a throwaway CA and one gateway credential."""
    directory.mkdir(parents=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server.private_key_pem.write_to_path(str(directory / "kms.key"))
    (directory / "kms.pem").write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
    entry = {"id": "gw-e2e", "roles": ["gateway"], "sha256": credential_digest(credential)}
    (directory / "creds.yaml").write_text(yaml.safe_dump({"credentials": [entry]}))
    listen = {
        "host": "127.0.0.1",
        "port": free_port(),
        "tls": {"cert": "kms.pem", "key": "kms.key"},
    }
    doc = {"data_dir": "data", "listen": listen, "credentials": "creds.yaml"}
    (directory / "kms.yaml").write_text(yaml.safe_dump(doc))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "kms", "serve", "--config", str(directory / "kms.yaml"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=directory,
    )  # fmt: skip
    assert proc.stderr is not None
    for _ in range(50):
        line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        if m := re.search(r"kms: serving on (https://\S+)", line):
            return KmsProcess(proc, m.group(1), directory / "ca.pem", directory / "data")
        if not line:
            break
    proc.kill()
    await proc.wait()
    raise AssertionError("tokengate kms serve did not start")


@pytest.mark.slow
async def test_a_gateway_keyring_rooted_in_tokengate_kms_serve(tmp_path: Path) -> None:
    credential = new_credential()
    kms = await start_kms(tmp_path / "kms", credential)
    try:
        gw = gateway_for(tmp_path / "gw", kms.url, f"ca={kms.ca}")
        status, out = await gw.keys("list", credential=credential)
        assert status == 0, out
        assert f"root: remote:{kms.url}" in out
        backup = gw.keyring.read_bytes()
        status, out = await gw.keys("rotate", "--kwk", credential=credential)
        assert status == 0, out
        assert (await gw.keys("list", credential=credential))[0] == 0

        gw.keyring.write_bytes(backup)
        status, out = await gw.keys("list", credential=credential)
        assert status != 0
        assert "kwk v1 is destroyed" in out

        untrusting = gateway_for(tmp_path / "gw2", kms.url)  # no ca=: the system store
        status, out = await untrusting.keys("list", credential=credential)
        assert status != 0
        assert "TLS certificate is not trusted" in out
    finally:
        err = await kms.stop()
    assert credential not in err
    audit = "".join(p.read_text() for p in (kms.data_dir / "audit").glob("*") if p.is_file())
    for event in ("kms.root_create", "kms.root_open", "kms.root_destroy"):
        assert event in audit
    assert '"client":"gw-e2e"' in audit.replace(" ", "")
    assert credential not in audit

    status, out = await gw.keys("list", credential=credential)  # the KMS is gone: fail closed
    assert status != 0
    assert "is unreachable" in out
