"""``tokengate audit verify|tail`` through click's CliRunner: output and exit statuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from audit import Ed25519CheckpointSigner
from proxy.cli import audit_cmd

from .support import WRITER, LogDirs, read_lines, write_lines, write_log_sync


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    group = click.Group("tokengate")
    audit_cmd.register(group)
    return CliRunner().invoke(group, ["audit", *args], env=env, catch_exceptions=False)


@pytest.fixture
def key_signer(tmp_path: Path) -> Ed25519CheckpointSigner:
    """The development key where the gateway keeps it: DATA_DIR/keys/audit-checkpoint.pem."""
    return Ed25519CheckpointSigner.load_or_create(tmp_path / "keys" / "audit-checkpoint.pem")


@pytest.fixture
def log(tmp_path: Path, key_signer: Ed25519CheckpointSigner) -> LogDirs:
    return write_log_sync(tmp_path, key_signer, 7)


def test_verify_an_intact_log_with_the_defaults(log: LogDirs) -> None:
    result = run("verify", str(log.log_dir))
    assert result.exit_code == 0, result.output
    assert f"key: {log.data_dir / 'keys' / 'audit-checkpoint.pem'}" in result.output
    assert f"checkpoints: {log.checkpoint_dir}" in result.output
    assert f"writer {WRITER}: ok, 9 entries, 2 checkpoints, closed" in result.output
    assert result.output.rstrip().endswith("audit log intact")


def test_verify_a_tampered_log_names_the_first_bad_entry(log: LogDirs) -> None:
    lines = read_lines(log.current())
    lines[3] = lines[3].replace(b"reason 3", b"SECRET 3")
    write_lines(log.current(), lines)
    result = run("verify", str(log.log_dir))
    assert result.exit_code == 1
    assert (
        f"writer {WRITER}: FAIL edited at {log.current()}:4 writer={WRITER} seq=3:" in result.output
    )
    assert "audit log NOT intact: 1 problem(s)" in result.output
    assert "SECRET" not in result.output


def test_verify_reports_truncation_against_the_checkpoint_directory(log: LogDirs) -> None:
    write_lines(log.current(), read_lines(log.current())[:-2])
    result = run("verify", str(log.current()), "--checkpoints", str(log.checkpoint_dir))
    assert result.exit_code == 1
    assert "FAIL truncated" in result.output
    assert "the second sink holds a checkpoint over seq 7" in result.output


def test_verify_with_explicit_keys(
    log: LogDirs, key_signer: Ed25519CheckpointSigner, tmp_path: Path
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key_signer.public_jwk()]}))
    assert run("verify", str(log.log_dir), "--jwks", str(jwks)).exit_code == 0
    pem = log.data_dir / "keys" / "audit-checkpoint.pem"
    assert run("verify", str(log.log_dir), "--public-key", str(pem)).exit_code == 0


def test_verify_with_the_wrong_key_fails(log: LogDirs, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps(Ed25519CheckpointSigner.generate().public_jwk()))
    result = run("verify", str(log.log_dir), "--jwks", str(other))
    assert result.exit_code == 1
    assert "bad_signature" in result.output


def test_verify_cannot_run_without_a_key_or_logs(tmp_path: Path) -> None:
    write_log_sync(tmp_path / "data", Ed25519CheckpointSigner.generate(), 1)
    result = run("verify", str(tmp_path / "data" / "audit"))
    assert result.exit_code == 2
    assert "no checkpoint key found" in result.output
    (tmp_path / "empty").mkdir()
    empty = run("verify", str(tmp_path / "empty"), "--jwks", str(tmp_path / "nope.json"))
    assert empty.exit_code == 2
    missing = run("verify", str(tmp_path / "missing"), "--public-key", str(tmp_path))
    assert missing.exit_code == 2


def test_verify_live_logs_with_allow_unclosed(
    tmp_path: Path, key_signer: Ed25519CheckpointSigner
) -> None:
    import asyncio

    from audit import open_audit_log

    from .support import config

    async def crash_copy() -> None:
        live = await open_audit_log(
            config(), data_dir=tmp_path / "live", signer=key_signer, writer=WRITER
        )
        await live.emit("gateway.stop", reason="x")
        shutil.copytree(tmp_path / "live", tmp_path / "copy")
        await live.close()

    asyncio.run(crash_copy())
    pem = str(tmp_path / "keys" / "audit-checkpoint.pem")
    assert run("verify", str(tmp_path / "copy" / "audit"), "--public-key", pem).exit_code == 1
    allowed = run(
        "verify", str(tmp_path / "copy" / "audit"), "--public-key", pem, "--allow-unclosed"
    )
    assert allowed.exit_code == 0
    assert f"writer {WRITER}: ok, 1 entries, 0 checkpoints, open" in allowed.output


def test_verify_from_postgresql(
    tmp_path: Path, key_signer: Ed25519CheckpointSigner, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    dirs = write_log_sync(tmp_path, key_signer, 7, postgres={"dsn": dsn, "schema": schema})
    pem = str(tmp_path / "keys" / "audit-checkpoint.pem")
    from_pg = run(
        "verify",
        dsn,
        "--schema",
        schema,
        "--checkpoints",
        str(dirs.checkpoint_dir),
        "--public-key",
        pem,
    )
    assert from_pg.exit_code == 0, from_pg.output
    pg_as_sink = run(
        "verify", str(dirs.log_dir), "--schema", schema, env={"TOKENGATE_AUDIT_DSN": dsn}
    )
    assert pg_as_sink.exit_code == 0, pg_as_sink.output
    assert (
        "checkpoints:" not in pg_as_sink.output
    )  # the database was the second sink, not the default dir
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{schema}".audit_entries WHERE seq = 2')
    tampered = run(
        "verify",
        dsn,
        "--schema",
        schema,
        "--checkpoints",
        str(dirs.checkpoint_dir),
        "--public-key",
        pem,
    )
    assert tampered.exit_code == 1
    assert f"FAIL deleted at postgresql:{schema}.audit_entries:" in tampered.output


def test_tail_prints_the_last_entries(log: LogDirs) -> None:
    result = run("tail", "-n", "2", str(log.log_dir))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert f' {WRITER} #7 gateway.stop reason="reason 6"' in lines[0]
    assert f" {WRITER} #8 audit.checkpoint " in lines[1]
    assert "final=true" in lines[1]


def test_tail_of_a_missing_path_is_refused(tmp_path: Path) -> None:
    result = run("tail", str(tmp_path / "missing"))
    assert result.exit_code == 2


def test_a_shared_database_sink_does_not_flag_other_hosts(
    tmp_path: Path, key_signer: Ed25519CheckpointSigner, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    pg = {"dsn": dsn, "schema": schema}
    mine = write_log_sync(tmp_path / "a", key_signer, 3, postgres=pg)
    write_log_sync(tmp_path / "b", key_signer, 3, writer="other-2-beef", postgres=pg)
    pem = str(tmp_path / "keys" / "audit-checkpoint.pem")
    local = run("verify", str(mine.log_dir), "--public-key", pem, "--dsn", dsn, "--schema", schema)
    assert local.exit_code == 0, local.output
    assert "other-2-beef" not in local.output
    # verifying from the database covers every writer, so a vanished one is reported
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DELETE FROM \"{schema}\".audit_entries WHERE writer = 'other-2-beef'")
    everything = run("verify", dsn, "--schema", schema, "--dsn", dsn, "--public-key", pem)
    assert everything.exit_code == 1
    assert "writer other-2-beef: FAIL deleted" in everything.output


def test_an_emptied_log_directory_is_reported_against_the_second_sink(log: LogDirs) -> None:
    for path in log.log_dir.iterdir():
        path.unlink()
    result = run("verify", str(log.log_dir))
    assert result.exit_code == 1
    assert f"writer {WRITER}: FAIL deleted" in result.output
    shutil.rmtree(log.checkpoint_dir)
    assert run("verify", str(log.log_dir)).exit_code == 2
