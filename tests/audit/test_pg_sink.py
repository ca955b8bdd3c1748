"""PostgreSQL sink against the real shared server: writes, verification from PG, tampering, failures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from audit import AuditUnavailableError, Ed25519CheckpointSigner, open_audit_log
from audit.entry import parse_entry
from audit.sources import (
    checkpoint_file_lines,
    connect_readonly,
    file_streams,
    find_log_files,
    pg_checkpoint_lines,
    pg_streams,
)
from audit.verify import Kind, Report, verify_log
from tests.conftest import free_port

from .support import WRITER, LogDirs, config, read_lines, write_log


def pg_config(pg_schema: tuple[str, str]) -> dict[str, object]:
    dsn, schema = pg_schema
    return {"dsn": dsn, "schema": schema, "timeout": 10}


def verify_pg(dsn: str, schema: str, dirs: LogDirs, signer: Ed25519CheckpointSigner) -> Report:
    """Entries from PostgreSQL, checkpoints from the independent checkpoint directory."""
    with connect_readonly(dsn) as conn:
        return verify_log(
            pg_streams(conn, schema),
            keys={signer.kid: signer.public_key()},
            checkpoints=list(checkpoint_file_lines(dirs.checkpoint_dir)),
            complete=True,
        )


async def test_entries_and_checkpoints_reach_postgresql_byte_for_byte(
    tmp_path: Path, signer: Ed25519CheckpointSigner, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    dirs = await write_log(tmp_path, signer, 12, postgres=pg_config(pg_schema))
    with psycopg.connect(dsn) as conn:
        lines = [
            r[0] for r in conn.execute(f'SELECT line FROM "{schema}".audit_entries ORDER BY id')
        ]
        records = [
            r[0]
            for r in conn.execute(f'SELECT record FROM "{schema}".audit_checkpoints ORDER BY id')
        ]
        finals = [
            r[0]
            for r in conn.execute(f'SELECT final FROM "{schema}".audit_checkpoints ORDER BY id')
        ]
    assert [(x + "\n").encode() for x in lines] == read_lines(dirs.current())
    assert [(x + "\n").encode() for x in records] == read_lines(
        dirs.checkpoint_dir / f"{WRITER}.jsonl"
    )
    assert finals == [False, False, True]


async def test_verify_from_postgresql_and_with_postgresql_as_second_sink(
    tmp_path: Path, signer: Ed25519CheckpointSigner, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    dirs = await write_log(tmp_path, signer, 12, postgres=pg_config(pg_schema))
    await write_log(tmp_path, signer, 3, writer="host-2-beef", postgres=pg_config(pg_schema))
    report = verify_pg(dsn, schema, dirs, signer)
    assert report.ok, report.findings
    assert sorted(w.writer for w in report.writers) == ["host-1-abcd", "host-2-beef"]
    with connect_readonly(dsn) as conn:
        from_files = verify_log(
            file_streams(find_log_files([dirs.log_dir])),
            keys={signer.kid: signer.public_key()},
            checkpoints=list(pg_checkpoint_lines(conn, schema)),
            complete=True,
        )
    assert from_files.ok, from_files.findings


def _edit(schema: str) -> str:
    return (
        f"UPDATE \"{schema}\".audit_entries SET line = replace(line, 'reason 6', 'reason X')"
        f" WHERE seq = 7 AND writer = '{WRITER}'"
    )


TAMPERS: list[tuple[str, Callable[[str], list[str]], Kind, int]] = [
    ("edit", lambda s: [_edit(s)], Kind.EDITED, 7),
    ("delete", lambda s: [f'DELETE FROM "{s}".audit_entries WHERE seq = 7'], Kind.DELETED, 7),
    (
        "reorder",
        lambda s: [
            f'UPDATE "{s}".audit_entries a SET line = b.line FROM "{s}".audit_entries b'
            f" WHERE (a.seq, b.seq) IN ((7, 8), (8, 7))"
        ],
        Kind.REORDERED,
        8,
    ),
    (
        "truncate",
        lambda s: [f'DELETE FROM "{s}".audit_entries WHERE seq >= 12'],
        Kind.TRUNCATED,
        12,
    ),
    (
        "insert",
        lambda s: [
            f'INSERT INTO "{s}".audit_entries (writer, seq, ts, event, line)'
            f' SELECT writer, 99, ts, event, line FROM "{s}".audit_entries WHERE seq = 3'
        ],
        Kind.INSERTED,
        3,
    ),
]


@pytest.mark.parametrize(
    ("name", "statements", "kind", "seq"), TAMPERS, ids=[t[0] for t in TAMPERS]
)
async def test_tampering_in_postgresql_is_named(
    tmp_path: Path,
    signer: Ed25519CheckpointSigner,
    pg_schema: tuple[str, str],
    name: str,
    statements: Callable[[str], list[str]],
    kind: Kind,
    seq: int,
) -> None:
    dsn, schema = pg_schema
    dirs = await write_log(tmp_path, signer, 12, postgres=pg_config(pg_schema))
    assert verify_pg(dsn, schema, dirs, signer).ok
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements(schema):
            conn.execute(statement)
    report = verify_pg(dsn, schema, dirs, signer)
    [finding] = report.findings
    assert (finding.kind, finding.writer, finding.seq) == (kind, WRITER, seq), finding
    assert finding.location is not None
    assert finding.location.source == f"postgresql:{schema}.audit_entries"


async def test_a_failing_database_refuses_the_act_and_every_later_one(
    tmp_path: Path, signer: Ed25519CheckpointSigner, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    log = await open_audit_log(
        config(postgres=pg_config(pg_schema)), data_dir=tmp_path, signer=signer, writer=WRITER
    )
    await log.emit("gateway.stop", reason="before")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{schema}".audit_entries')
    with pytest.raises(AuditUnavailableError) as caught:
        await log.emit("gateway.stop", reason="during")
    assert isinstance(caught.value.__cause__, psycopg.Error)
    with pytest.raises(AuditUnavailableError):
        await log.emit("gateway.stop", reason="after")
    await log.close()


async def test_an_unreachable_database_stops_the_open(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    cfg = config(postgres={"dsn": dsn, "connect_timeout": 2, "timeout": 2})
    with pytest.raises(
        AuditUnavailableError, match="cannot connect to the postgresql sink"
    ) as caught:
        await open_audit_log(cfg, data_dir=tmp_path, signer=signer, writer=WRITER)
    assert "postgres@" not in str(caught.value)


async def test_the_schema_and_tables_are_created_when_absent(
    tmp_path: Path, signer: Ed25519CheckpointSigner, unique_prefix: str
) -> None:
    from tests.conftest import DATABASE_URL

    schema = f"{unique_prefix}_fresh"
    try:
        dirs = await write_log(
            tmp_path, signer, 2, postgres={"dsn": DATABASE_URL, "schema": schema}
        )
        with psycopg.connect(DATABASE_URL) as conn:
            rows = conn.execute(f'SELECT line FROM "{schema}".audit_entries ORDER BY id').fetchall()
        assert [parse_entry(r[0].encode()).seq for r in rows] == [0, 1, 2]
        assert len(read_lines(dirs.current())) == 3
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
