"""Reading audit logs for the verifier and ``tail``: files, directories and PostgreSQL.

The IO half of verification (the pure half is :mod:`audit.verify`). Lines
are read lazily, so a log of any size streams through in bounded memory.

Files: a directory holds ``<writer>.jsonl`` (current) and
``<writer>.<n>.jsonl`` (rotated, oldest first) for every writer; other names
are not audit logs and are left out. Files given one by one are grouped by
the writer named in their file name and put in rotation order.

PostgreSQL: ``audit_entries`` rows in ``id`` (insertion) order per writer,
``audit_checkpoints`` rows in ``id`` order; read in a read-only transaction
through a server-side cursor, each statement under ``statement_timeout``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from audit.entry import MAX_LINE
from audit.errors import AuditUnavailableError
from audit.pg_sink import CHECKPOINTS, ENTRIES
from audit.report import Line, Location

LOG_NAME = re.compile(r"^(?P<writer>[A-Za-z0-9][A-Za-z0-9_-]{0,127})(?:\.(?P<n>\d{6,}))?\.jsonl$")


@dataclass(frozen=True, slots=True)
class LogFiles:
    """Log files by writer in chain order; ``complete`` when whole directories were given."""

    by_writer: dict[str, list[Path]]
    complete: bool


def _order(path: Path) -> tuple[int, int]:
    match = LOG_NAME.match(path.name)
    n = match.group("n") if match else None
    return (0, int(n)) if n is not None else (1, 0)  # rotated files first, current file last


def find_log_files(paths: Sequence[Path]) -> LogFiles:
    """Group the log files under ``paths`` (files or directories) by writer."""
    groups: dict[str, set[Path]] = {}
    complete = False
    for path in paths:
        if path.is_dir():
            complete = True
            candidates = sorted(p for p in path.iterdir() if p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            raise AuditUnavailableError(f"audit: {path} does not exist")
        for candidate in candidates:
            match = LOG_NAME.match(candidate.name)
            if match is not None:
                groups.setdefault(match.group("writer"), set()).add(candidate)
            elif not path.is_dir():
                raise AuditUnavailableError(
                    f"audit: {candidate.name} is not an audit log file name"
                )
    return LogFiles({w: sorted(files, key=_order) for w, files in sorted(groups.items())}, complete)


def file_lines(path: Path) -> Iterator[Line]:
    """The lines of ``path`` with 1-based line numbers (each at most MAX_LINE bytes)."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise AuditUnavailableError(f"audit: cannot read {path} ({e.strerror})") from e
    with f:
        for number, data in enumerate(iter(lambda: f.readline(MAX_LINE + 2), b""), start=1):
            yield Line(Location(str(path), number), data)


def file_streams(files: LogFiles) -> Iterator[tuple[str, Iterator[Line]]]:
    """``(writer, lines)`` for every writer, its files concatenated in chain order."""
    for writer, paths in files.by_writer.items():
        yield writer, itertools.chain.from_iterable(file_lines(p) for p in paths)


def checkpoint_file_lines(path: Path) -> Iterator[Line]:
    """Second-sink records from a checkpoint file or every ``*.jsonl`` of a directory."""
    if path.is_dir():
        for child in sorted(path.glob("*.jsonl")):
            yield from file_lines(child)
    elif path.is_file():
        yield from file_lines(path)
    else:
        raise AuditUnavailableError(f"audit: {path} does not exist")


def connect_readonly(dsn: str, *, timeout: float = 10.0) -> psycopg.Connection[tuple[object, ...]]:
    """A read-only connection for verification, statements bounded by ``timeout``."""
    try:
        conn = psycopg.connect(
            dsn, connect_timeout=max(1, int(timeout)), application_name="tokengate-audit-verify"
        )
        conn.read_only = True
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(timeout * 1000))))
    except psycopg.Error as e:
        raise AuditUnavailableError("audit: cannot connect to postgresql") from e
    return conn


def pg_streams(
    conn: psycopg.Connection[tuple[object, ...]], schema: str
) -> Iterator[tuple[str, Iterator[Line]]]:
    """``(writer, lines)`` from ``<schema>.audit_entries``, each writer's rows in id order."""
    source = f"postgresql:{schema}.{ENTRIES}"
    query = sql.SQL("SELECT writer, id, line FROM {}.{} ORDER BY writer, id").format(
        sql.Identifier(schema), sql.Identifier(ENTRIES)
    )
    rows = _rows(conn, query, "audit_entries")
    for writer, group in itertools.groupby(rows, key=lambda row: str(row[0])):
        yield writer, (Line(Location(source, int(str(r[1]))), _line(r[2])) for r in group)


def pg_checkpoint_lines(
    conn: psycopg.Connection[tuple[object, ...]], schema: str
) -> Iterator[Line]:
    """Second-sink records from ``<schema>.audit_checkpoints`` in id order."""
    source = f"postgresql:{schema}.{CHECKPOINTS}"
    query = sql.SQL("SELECT id, record FROM {}.{} ORDER BY id").format(
        sql.Identifier(schema), sql.Identifier(CHECKPOINTS)
    )
    for row in _rows(conn, query, "audit_checkpoints"):
        yield Line(Location(source, int(str(row[0]))), _line(row[1]))


def _line(value: object) -> bytes:
    return (str(value) + "\n").encode("utf-8")


def _rows(
    conn: psycopg.Connection[tuple[object, ...]], query: sql.Composed, name: str
) -> Iterator[tuple[object, ...]]:
    try:
        with conn.cursor(name=f"tokengate_{name}") as cur:
            cur.itersize = 2000
            cur.execute(query)
            yield from cur
    except psycopg.Error as e:
        raise AuditUnavailableError(f"audit: cannot read {name} from postgresql") from e
