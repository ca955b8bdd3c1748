"""``tokengate audit verify|tail``: prove a log intact, or read it.

``verify`` exits 0 only when every chain is intact and closed, 1 when
anything is wrong (each broken writer's first bad entry is printed with its
kind), and 2 when it cannot run (missing files, keys, database). Output names
positions and seq numbers, never field values.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import AuditError
from audit.keys import load_jwks, load_public_pem
from audit.sources import (
    checkpoint_file_lines,
    connect_readonly,
    file_streams,
    find_log_files,
    pg_checkpoint_lines,
    pg_streams,
)
from audit.tail import follow, tail_lines
from audit.verify import Line, Report, verify_log

DEFAULT_SCHEMA = "tokengate_audit"
DEFAULT_KEY = Path("keys/audit-checkpoint.pem")
# Written by the gateway at start: the keyring's audit-checkpoint keys plus the fallback key.
DEFAULT_JWKS = Path("keys/audit-checkpoint.jwks.json")
DEFAULT_CHECKPOINTS = Path("audit-checkpoints")
_PG_SCHEMES = ("postgresql://", "postgres://")


class CannotRun(click.ClickException):
    """Verification could not run at all (files, keys, database): exit status 2."""

    exit_code = 2


def register(cli: click.Group) -> None:
    """Add the ``audit`` group to the root command."""
    cli.add_command(audit)


@click.group()
def audit() -> None:
    """Verify and read the tamper-evident audit log."""


@audit.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--checkpoints",
    "checkpoints_path",
    type=click.Path(exists=True, path_type=Path),
    help="second-sink checkpoint dir or file (default: DATA_DIR/audit-checkpoints if present)",
)
@click.option(
    "--dsn",
    envvar="TOKENGATE_AUDIT_DSN",
    help="PostgreSQL holding second-sink checkpoints (env TOKENGATE_AUDIT_DSN)",
)
@click.option("--schema", default=DEFAULT_SCHEMA, show_default=True, help="PostgreSQL schema")
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="checkpoint key PEM (public, or the private key file)",
)
@click.option(
    "--jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="checkpoint public keys as a JWKS file",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="gateway data dir for the default key and checkpoints (default: above the log dir)",
)
@click.option(
    "--allow-unclosed",
    is_flag=True,
    help="accept chains of writers still running (no closing checkpoint)",
)
def verify(
    paths: tuple[str, ...],
    checkpoints_path: Path | None,
    dsn: str | None,
    schema: str,
    public_key: Path | None,
    jwks: Path | None,
    data_dir: Path | None,
    allow_unclosed: bool,
) -> None:
    """Prove nothing in the log at PATH... was deleted, inserted, reordered, edited or cut.

    PATH is a log file, a log directory (every writer, rotated files in order)
    or a postgresql:// URL whose --schema holds the entries.
    """
    try:
        with ExitStack() as stack:
            data_dir = data_dir or _guess_data_dir(paths)
            keys = _keys(public_key, jwks, data_dir)
            checkpoints = _checkpoints(checkpoints_path, dsn, schema, data_dir, stack)
            streams, complete = _streams(paths, schema, stack, has_sink=bool(checkpoints))
            if complete and dsn is not None and not paths[0].startswith(_PG_SCHEMES):
                # a shared database also holds other hosts' writers: do not call them deleted
                click.echo("writers: only those under PATH (verify from postgresql:// for all)")
                complete = False
            report = verify_log(
                streams,
                keys=keys,
                checkpoints=checkpoints,
                complete=complete,
                allow_unclosed=allow_unclosed,
            )
    except AuditError as e:
        raise CannotRun(str(e)) from e
    _print_report(report)
    click.get_current_context().exit(0 if report.ok else 1)


@audit.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-n", "lines", default=10, show_default=True, type=click.IntRange(min=0), help="entries to show"
)
@click.option(
    "-f", "--follow", "follow_", is_flag=True, help="keep printing entries as they are written"
)
def tail(paths: tuple[Path, ...], lines: int, follow_: bool) -> None:
    """Print the last entries of the log at PATH... (files or directories), one per line."""
    try:
        if follow_:
            for line in follow(list(paths), n=lines, sleep=time.sleep):
                click.echo(line)
        else:
            for line in tail_lines(list(paths), lines):
                click.echo(line)
    except AuditError as e:
        raise CannotRun(str(e)) from e
    except KeyboardInterrupt:
        return


def _guess_data_dir(paths: tuple[str, ...]) -> Path | None:
    """The data dir the log lives in: the parent of the log directory."""
    first = paths[0]
    if first.startswith(_PG_SCHEMES):
        return None
    path = Path(first)
    return path.parent if path.is_dir() else path.parent.parent


def _keys(
    public_key: Path | None, jwks: Path | None, data_dir: Path | None
) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    if public_key is not None:
        keys.update(load_public_pem(public_key))
    if jwks is not None:
        keys.update(load_jwks(jwks))
    if keys:
        return keys
    if data_dir is not None and (data_dir / DEFAULT_JWKS).is_file():
        click.echo(f"keys: {data_dir / DEFAULT_JWKS}")
        return load_jwks(data_dir / DEFAULT_JWKS)
    default = data_dir / DEFAULT_KEY if data_dir is not None else None
    if default is None or not default.is_file():
        raise CannotRun("no checkpoint key found: pass --public-key or --jwks")
    click.echo(f"key: {default}")
    return load_public_pem(default)


def _streams(
    paths: tuple[str, ...], schema: str, stack: ExitStack, *, has_sink: bool
) -> tuple[Iterable[tuple[str, Iterator[Line]]], bool]:
    """The writers' lines, and whether they are all the writers there are."""
    urls = [p for p in paths if p.startswith(_PG_SCHEMES)]
    if urls:
        if len(paths) != 1:
            raise click.UsageError("a postgresql:// PATH must be the only PATH")
        conn = stack.enter_context(connect_readonly(urls[0]))
        return pg_streams(conn, schema), True
    files = find_log_files([Path(p) for p in paths])
    if not files.by_writer and not (files.complete and has_sink):
        raise CannotRun("no audit log files under the given paths")
    return file_streams(files), files.complete


def _checkpoints(
    path: Path | None, dsn: str | None, schema: str, data_dir: Path | None, stack: ExitStack
) -> list[Line] | None:
    """Every second-sink record (small: one per checkpoint), or None without a second sink."""
    sources: list[Iterable[Line]] = []
    if path is None and dsn is None and data_dir is not None:
        default = data_dir / DEFAULT_CHECKPOINTS
        if default.is_dir():
            click.echo(f"checkpoints: {default}")
            path = default
    if path is not None:
        sources.append(checkpoint_file_lines(path))
    if dsn is not None:
        conn = stack.enter_context(connect_readonly(dsn))
        sources.append(pg_checkpoint_lines(conn, schema))
    if not sources:
        click.echo("checkpoints: none (truncation shows only as a missing closing checkpoint)")
        return None
    return [line for source in sources for line in source]


def _print_report(report: Report) -> None:
    for finding in report.sink_findings:
        click.echo(f"second sink: FAIL {finding}")
    for writer in report.writers:
        if writer.finding is None:
            state = "closed" if writer.closed else "open"
            click.echo(
                f"writer {writer.writer}: ok, {writer.entries} entries,"
                f" {writer.checkpoints} checkpoints, {state}"
            )
        else:
            click.echo(f"writer {writer.writer}: FAIL {writer.finding}")
    problems = len(report.findings)
    click.echo("audit log intact" if report.ok else f"audit log NOT intact: {problems} problem(s)")
