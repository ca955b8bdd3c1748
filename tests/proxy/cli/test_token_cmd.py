"""``tokengate token ...`` against a real admin API on a real port.

The admin API serves the token routes over a real Vault (SQLite file, real
keyring) and the real audit log. The CLI runs once as a real process
(``python -m proxy.cli``), otherwise through click's CliRunner in a worker
thread (its own event loop) while the test's loop serves the API.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result

from audit import AuditConfig, Ed25519CheckpointSigner, open_audit_log
from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.keys import key_digest, new_api_key
from proxy.adminapi.token_api import add_token_api
from proxy.adminapi.token_service import VaultTokenService
from proxy.cli import token_cmd
from tests.kms_client.support import open_manager
from vault.api import ClassSpec
from vault.engine import Vault
from vault.sqlite_store import SqliteVault

ROLES = ("auditor", "operator", "admin")


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    tmp: Path
    data_dir: Path

    def _key(self, role: str | None, key_file: bool) -> tuple[list[str], str | None]:
        """(extra arguments, environment key) that hand the CLI the key of ``role``."""
        if role is not None and key_file:
            path = self.tmp / f"{role}.key"
            path.write_text(self.keys[role] + "\n")
            return ["--api-key-file", str(path)], None
        return [], None if role is None else self.keys[role]

    async def run(
        self, *args: str, role: str | None = None, stdin: str = "", key_file: bool = False
    ) -> tuple[int, str, str]:
        """Run the CLI in-process (a thread); the key comes from the environment or a file."""
        extra, key = self._key(role, key_file)

        def invoke() -> Result:
            group = click.Group()
            token_cmd.register(group)
            old = Path.cwd()
            os.chdir(self.tmp)
            try:
                return CliRunner().invoke(
                    group, ["token", *args, *extra], input=stdin,
                    env={"TOKENGATE_API_KEY": key},
                )  # fmt: skip
            finally:
                os.chdir(old)

        result = await asyncio.to_thread(invoke)
        return result.exit_code, result.stdout, result.stderr

    async def run_process(
        self, *args: str, role: str | None = None, stdin: str = "", key_file: bool = False
    ) -> tuple[int, str, str]:
        """Run ``python -m proxy.cli token ...`` as a real process."""
        extra, key = self._key(role, key_file)
        env = {k: v for k, v in os.environ.items() if k != "TOKENGATE_API_KEY"}
        if key is not None:
            env["TOKENGATE_API_KEY"] = key
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy.cli", "token", *args, *extra,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=self.tmp,
        )  # fmt: skip
        out, err = await proc.communicate(stdin.encode())
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    audit = await open_audit_log(
        AuditConfig(), data_dir=data_dir, signer=Ed25519CheckpointSigner.generate()
    )
    manager = await open_manager(tmp_path / "keys")
    store = SqliteVault(tmp_path / "vault.db", timeout=2.0)
    await store.open()
    keys = {role: new_api_key() for role in ROLES}
    config = AdminApiConfig.model_validate(
        {"keys": [{"name": r, "role": r, "sha256": key_digest(k)} for r, k in keys.items()]}
    )
    service = VaultTokenService(Vault(store, manager), lambda: {"email": ClassSpec("email")})
    app = web.Application()
    add_token_api(app, config=config, service=service, auditor=audit)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Live(str(server.make_url("")).rstrip("/"), keys, tmp_path, data_dir)
    finally:
        await server.close()
        await store.close()
        await manager.close()
        await audit.close()


def _json(out: str) -> dict[str, Any]:
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


async def test_tokenize_from_stdin_detokenize_and_delete(live: Live) -> None:
    values = ["alice@example.com", "bob@example.com"]
    code, out, err = await live.run_process(
        "tokenize", "--class", "email", "--admin-url", live.url, "--owner", "u1", "-",
        role="operator", stdin="\n".join(values) + "\n",
    )  # fmt: skip
    assert code == 0, err
    tokens = [r["token"] for r in _json(out)["results"]]
    assert len(tokens) == 2

    code, out, err = await live.run(
        "detokenize", "--class", "email", "--admin-url", live.url, *tokens,
        role="admin", key_file=True,
    )  # fmt: skip
    assert code == 0, err
    shown = _json(out)["results"]
    assert [r["value"] for r in shown] == values
    assert {r["owner"] for r in shown} == {"u1"}

    code, out, err = await live.run(
        "delete", "--class", "email", "--admin-url", live.url, tokens[0], role="admin"
    )
    assert code == 0, err
    assert _json(out) == {"class": "email", "count": 1, "deleted": 1}

    audit = "".join(p.read_text() for p in (live.data_dir / "audit").glob("*.jsonl"))
    assert '"admin.token_delete"' in audit
    for secret in [*values, *tokens, *live.keys.values()]:
        assert secret not in audit


async def test_operator_cannot_detokenize(live: Live) -> None:
    code, out, err = await live.run(
        "detokenize", "--class", "email", "--admin-url", live.url, "tok_x", role="operator"
    )
    assert code == 1
    assert out == ""
    assert "403 forbidden: admin: this operation needs the admin role" in err
    assert live.keys["operator"] not in err


async def test_the_key_never_comes_from_an_argument(live: Live) -> None:
    code, _, err = await live.run("tokenize", "--class", "email", "--admin-url", live.url, "x")
    assert code == 2
    assert "give --api-key-file or set TOKENGATE_API_KEY" in err
    code, _, err = await live.run(
        "tokenize", "--class", "email", "--admin-url", live.url,
        "--api-key", live.keys["admin"], "x",
    )  # fmt: skip
    assert code == 2
    assert "No such option" in err
    assert live.keys["admin"] not in err


async def test_default_url_comes_from_gateway_yaml(live: Live) -> None:
    port = live.url.rsplit(":", 1)[1]
    (live.tmp / "gateway.yaml").write_text(
        "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"
        f"admin:\n  host: 0.0.0.0\n  port: {port}\n"
    )
    code, out, err = await live.run("tokenize", "--class", "email", "a@b.c", role="operator")
    assert code == 0, err
    assert _json(out)["results"][0]["token"].startswith("tok_")


async def test_long_input_is_split_into_requests_and_merged_in_order(live: Live) -> None:
    values = [f"user{i:04d}@example.com" for i in range(1200)]
    code, out, err = await live.run(
        "tokenize", "--class", "email", "--admin-url", live.url, "-",
        role="operator", stdin="\n".join(values),
    )  # fmt: skip
    assert code == 0, err
    tokens = [r["token"] for r in _json(out)["results"]]
    assert len(tokens) == 1200
    code, out, err = await live.run(
        "detokenize", "--class", "email", "--admin-url", live.url, "-",
        role="admin", stdin="\n".join(tokens),
    )  # fmt: skip
    assert code == 0, err
    assert [r["value"] for r in _json(out)["results"]] == values


async def test_unreachable_api_is_one_line(live: Live, unused_port: int) -> None:
    code, _, err = await live.run(
        "tokenize", "--class", "email", "--admin-url", f"http://127.0.0.1:{unused_port}", "x",
        role="operator",
    )  # fmt: skip
    assert code == 1
    assert "token: the admin API did not answer" in err
    assert "Traceback" not in err
