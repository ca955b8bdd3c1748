"""``tokengate kms serve``, ``kms credential create`` and ``kms tees register|retire|list``.

The KMS runs as a real process (``python -m proxy.cli kms serve``); the registry commands
talk to it over HTTP with an admin credential, exactly as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kms.auth import credential_digest
from proxy.cli import _register, cli
from tests.conftest import free_port

_register()
ROOT = Path(__file__).resolve().parents[3]
M = "ab" * 48


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env)


def write_kms(tmp: Path, **over: object) -> tuple[Path, str, str]:
    """kms.yaml with an admin and a gateway credential; (path, admin secret, gateway secret)."""
    admin = invoke(["kms", "credential", "create", "--id", "ops", "--role", "admin"])
    gateway = invoke(["kms", "credential", "create", "--id", "gw", "--role", "gateway"])
    secrets = []
    entries = []
    for result in (admin, gateway):
        assert result.exit_code == 0, result.output
        match = re.search(r"tgk_[a-z2-7]{52}", result.output)
        assert match is not None
        secrets.append(match.group(0))
        entries += yaml.safe_load(result.stdout)
    assert entries[0]["sha256"] == credential_digest(secrets[0])
    (tmp / "creds.yaml").write_text(yaml.safe_dump({"credentials": entries}))
    doc: dict[str, object] = {
        "data_dir": "data",
        "listen": {"host": "127.0.0.1", "port": free_port()},
        "credentials": "creds.yaml",
        "insecure_simulated_tee": True,
    }
    doc.update(over)
    path = tmp / "kms.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, secrets[0], secrets[1]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Path, str, str]]:
    """A running ``tokengate kms serve``: (url, tmp dir, admin secret, gateway secret)."""
    path, admin, gateway = write_kms(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "kms", "serve", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = None
        for _ in range(20):
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            if m := re.search(r"kms: serving on (http://\S+)", line):
                url = m.group(1)
                break
        assert url is not None
        yield url, tmp_path, admin, gateway
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        for secret in (admin, gateway):
            assert secret.encode() not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_register_list_retire_against_a_running_kms(
    served: tuple[str, Path, str, str],
) -> None:
    url, tmp, admin, gateway = served
    env = {"TOKENGATE_KMS_URL": url, "TOKENGATE_KMS_CREDENTIAL": admin}
    register = [
        "kms", "tees", "register", "--id", "w1", "--platform", "sim",
        "--measurement", f"measurement={M}", "--tenant", "acme", "--job", "card_check", "--json",
    ]  # fmt: skip
    result = await asyncio.to_thread(invoke, register, env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["id"] == "w1"

    again = await asyncio.to_thread(invoke, register, env)
    assert again.exit_code == 1
    assert "409 tee_exists" in again.output

    body = tmp / "w2.yaml"
    body.write_text(
        yaml.safe_dump(
            {
                "id": "w2",
                "platform": "nitro",
                "measurements": {"pcr0": ["00" * 48]},
                "tenants": ["t"],
            }
        )
    )
    from_file = await asyncio.to_thread(
        invoke, ["kms", "tees", "register", "--from-file", str(body)], env
    )
    assert from_file.exit_code == 0, from_file.output
    assert from_file.stdout.startswith("w2\tnitro\tactive")

    listed = await asyncio.to_thread(invoke, ["kms", "tees", "list", "--json"], env)
    assert [e["id"] for e in json.loads(listed.stdout)] == ["w1", "w2"]

    retired = await asyncio.to_thread(invoke, ["kms", "tees", "retire", "w1", "--yes"], env)
    assert retired.exit_code == 0, retired.output
    assert "\tretired\t" in retired.stdout

    cred_file = tmp / "gw.cred"
    cred_file.write_text(gateway)
    cred_file.chmod(0o600)
    as_gateway = await asyncio.to_thread(
        invoke,
        ["kms", "tees", "retire", "w2", "--yes", "--url", url, "--credential-file", str(cred_file)],
    )
    assert as_gateway.exit_code == 1
    assert "403 forbidden" in as_gateway.output
    for answer in (result, again, listed, retired, as_gateway):
        assert admin not in answer.output
        assert gateway not in answer.output


def test_register_needs_its_fields(tmp_path: Path) -> None:
    env = {"TOKENGATE_KMS_URL": "http://127.0.0.1:1", "TOKENGATE_KMS_CREDENTIAL": "tgk_x"}
    result = invoke(["kms", "tees", "register", "--id", "w1", "--platform", "sim"], env)
    assert result.exit_code == 2
    result = invoke(
        ["kms", "tees", "register", "--id", "w1", "--platform", "sim", "--tenant", "a",
         "--measurement", "nohex"], env,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "NAME=HEX" in result.output


def test_unreachable_kms_is_a_clean_error() -> None:
    env = {"TOKENGATE_KMS_URL": f"http://127.0.0.1:{free_port()}", "TOKENGATE_KMS_CREDENTIAL": "x"}
    result = invoke(["kms", "tees", "list"], env)
    assert result.exit_code == 1
    assert "unreachable" in result.output
    missing = invoke(["kms", "tees", "list"], {"TOKENGATE_KMS_URL": "http://127.0.0.1:1"})
    assert missing.exit_code == 1
    assert "TOKENGATE_KMS_CREDENTIAL" in missing.output


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "kms.yaml"
    path.write_text("listen: {port: -1}\nsurprise: 1\n")
    result = invoke(["kms", "serve", "--config", str(path)])
    assert result.exit_code == 2
    assert "kms.yaml: listen.port" in result.output
    assert "kms.yaml: surprise: unknown key" in result.output


def test_production_refuses_insecure_settings(tmp_path: Path) -> None:
    path, _, _ = write_kms(tmp_path, mode="production")
    result = invoke(["kms", "serve", "--config", str(path)])
    assert result.exit_code == 2
    for problem in ("listen.tls", "insecure_simulated_tee", "keys.root", "audit.postgres"):
        assert problem in result.output
