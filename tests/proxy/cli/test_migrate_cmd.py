"""``tokengate migrate`` through the real CLI: the gateway's keyring, vault and audit log from
gateway.yaml, an existing app table on a SQLite file or the shared PostgreSQL, and a run killed
with SIGKILL mid-way then resumed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from proxy.cli import migrate_cmd
from tests.proxy.cli.vaultkit import opened_vault
from tests.proxy.migrate.support import (
    make_pg,
    make_sqlite,
    read_pg,
    read_sqlite,
    rows,
    write_config,
)
from vault.api import ClassSpec, DetokenizeItem, Revealed

EMAIL = ClassSpec("email")
VAULT: dict[str, object] = {"url": "sqlite:vault/vault.db"}
REPO = Path(__file__).resolve().parents[3]


def _run(config: Path, *args: str) -> Result:
    group = click.Group()
    migrate_cmd.register(group)
    return CliRunner().invoke(group, ["migrate", *args, "--config", str(config)])


def _counts(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    return data


def _detokenized(data_dir: Path, tokens: list[str]) -> list[str | None]:
    async def go() -> list[str | None]:
        async with opened_vault(data_dir, VAULT) as (vault, _):
            out = await vault.detokenize([DetokenizeItem(t, EMAIL) for t in tokens])
        return [r.value if isinstance(r, Revealed) else None for r in out]

    return asyncio.run(go())


def _texts(made: dict[int, object]) -> dict[int, str]:
    return {k: v for k, v in made.items() if isinstance(v, str) and v}


def test_sqlite_dry_run_full_run_rerun(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    data = rows(30)
    app = tmp_path / "app.db"
    make_sqlite(app, data)
    made = {r[0]: r[1] for r in data}
    texts = _texts(made)
    base = ("--dsn", f"sqlite://{app}", "--table", "users", "--column", "email")
    args = (*base, "--class", "email", "--owner-column", "owner", "--json")

    dry = _counts(_run(config, *args, "--dry-run"))
    assert dry["dry_run"] is True
    assert dry["tokenized"] == len(texts)
    assert read_sqlite(app) == made

    full = _counts(_run(config, *args, "--batch-size", "4"))
    assert full["tokenized"] == len(texts)
    assert full["not_text"] == 2
    after = read_sqlite(app)
    tokens = [str(after[k]) for k in texts]
    assert _detokenized(tmp_path / "data", tokens) == list(texts.values())

    again = _counts(_run(config, *args))
    assert again["tokenized"] == 0
    assert again["already_tokens"] == len(texts)
    assert read_sqlite(app) == after

    human = _run(config, *base, "--class", "email")
    assert human.exit_code == 0, human.output
    assert f"scanned 30: tokenized 0, already tokens {len(texts)}" in human.stdout

    audit = "".join(p.read_text() for p in (tmp_path / "data" / "audit").glob("*.jsonl"))
    assert '"migrate.finish"' in audit
    for secret in [*texts.values(), *tokens]:
        assert secret not in audit


def test_postgresql_with_where(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    config = write_config(tmp_path)
    data = rows(20, sqlite=False)
    make_pg(url, schema, data)
    made = {r[0]: r[1] for r in data}
    result = _run(
        config, "--dsn", url, "--table", f"{schema}.users", "--column", "email",
        "--class", "email", "--where", "kind = 'customer'", "--json",
    )  # fmt: skip
    counts = _counts(result)
    customers = {k: v for k, v in _texts(made).items() if k % 2 == 0}
    assert counts["tokenized"] == len(customers)
    after = read_pg(url, schema)
    assert {k for k in made if after[k] != made[k]} == set(customers)
    tokens = [str(after[k]) for k in customers]
    assert _detokenized(tmp_path / "data", tokens) == list(customers.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--table", "users;drop", "--column", "email", "--class", "email"), "plain identifier"),
        (("--table", "users", "--column", "e mail", "--class", "email"), "plain identifier"),
        (("--table", "users", "--column", "email", "--class", "iban"), "no policy file declares"),
    ],
)
def test_bad_input_is_refused_before_anything_opens(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    config = write_config(tmp_path)
    app = tmp_path / "app.db"
    make_sqlite(app, rows(3))
    result = _run(config, "--dsn", f"sqlite:{app}", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "data").exists()  # no keyring, no audit log, no vault touched


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = _run(
        config, "--dsn", f"sqlite:{tmp_path / 'absent.db'}", "--table", "users",
        "--column", "email", "--class", "email",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "migrate: the SQLite file does not exist" in result.output
    assert "Traceback" not in result.output


def test_killed_mid_run_then_resumed_tokenizes_every_row_exactly_once(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    data = rows(60)
    app = tmp_path / "app.db"
    make_sqlite(app, data)
    made = {r[0]: r[1] for r in data}
    texts = _texts(made)
    args = [
        "migrate", "--dsn", f"sqlite:{app}", "--table", "users", "--column", "email",
        "--class", "email", "--batch-size", "3", "--config", str(config),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.proxy.cli.slow_migrate", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        for _ in range(4):
            assert proc.stdout.readline().strip() == b"batch"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    partial = read_sqlite(app)
    done = {k for k in texts if partial[k] != made[k]}
    assert 4 <= len(done) < len(texts)  # some batches committed, not all

    resumed = _counts(_run(config, *args[1:-2], "--json"))
    assert resumed["already_tokens"] == len(done)
    assert resumed["tokenized"] == len(texts) - len(done)
    assert resumed["conflicts"] == 0
    final = read_sqlite(app)
    assert {k: final[k] for k in done} == {k: partial[k] for k in done}  # left alone
    tokens = [str(final[k]) for k in texts]
    assert all(t.startswith("tok_") for t in tokens)
    assert _detokenized(tmp_path / "data", tokens) == list(texts.values())  # each exactly once
    assert {k: final[k] for k in made if k not in texts} == {
        k: v for k, v in made.items() if k not in texts
    }
