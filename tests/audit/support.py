"""Helpers for the audit tests: real logs written by the real AuditLog, and file tampering."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from audit import AuditConfig, Ed25519CheckpointSigner, open_audit_log
from audit.sources import checkpoint_file_lines, file_streams, find_log_files
from audit.verify import Report, verify_log

WRITER = "host-1-abcd"


@dataclass(frozen=True)
class LogDirs:
    """Where a test log lives."""

    data_dir: Path
    log_dir: Path
    checkpoint_dir: Path

    def current(self, writer: str = WRITER) -> Path:
        return self.log_dir / f"{writer}.jsonl"


def dirs_of(data_dir: Path) -> LogDirs:
    """The default log and checkpoint directories under ``data_dir``."""
    return LogDirs(data_dir, data_dir / "audit", data_dir / "audit-checkpoints")


def config(**overrides: object) -> AuditConfig:
    """An AuditConfig with test-friendly defaults (checkpoint every 5 entries)."""
    values: dict[str, object] = {"checkpoint_every": 5}
    values.update(overrides)
    return AuditConfig.model_validate(values)


async def write_log(
    data_dir: Path,
    signer: Ed25519CheckpointSigner,
    count: int,
    *,
    writer: str = WRITER,
    close: bool = True,
    **overrides: object,
) -> LogDirs:
    """Emit ``count`` gateway.stop events through a real AuditLog (closed unless told)."""
    cfg = config(**overrides)
    log = await open_audit_log(cfg, data_dir=data_dir, signer=signer, writer=writer)
    for i in range(count):
        await log.emit("gateway.stop", reason=f"reason {i}")
    if close:
        await log.close()
    return LogDirs(data_dir, cfg.log_dir(data_dir), cfg.checkpoint_path(data_dir))


def write_log_sync(
    data_dir: Path, signer: Ed25519CheckpointSigner, count: int, **kw: object
) -> LogDirs:
    """write_log for synchronous tests (Hypothesis, CLI)."""
    return asyncio.run(write_log(data_dir, signer, count, **kw))  # type: ignore[arg-type]


def verify_dirs(
    dirs: LogDirs,
    signer: Ed25519CheckpointSigner,
    *,
    with_sink: bool = True,
    allow_unclosed: bool = False,
) -> Report:
    """Verify a log directory (and its checkpoint directory unless told not to)."""
    keys = {signer.kid: signer.public_key()}
    sink = checkpoint_file_lines(dirs.checkpoint_dir) if with_sink else None
    return verify_log(
        file_streams(find_log_files([dirs.log_dir])),
        keys=keys,
        checkpoints=sink,
        complete=True,
        allow_unclosed=allow_unclosed,
    )


def read_lines(path: Path) -> list[bytes]:
    """The lines of a file, each with its newline."""
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    """Replace a file's content with ``lines``."""
    path.write_bytes(b"".join(lines))


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """WARNING: process-wide. Make writes beyond ``limit`` bytes fail with EFBIG (a full disk).

    RLIMIT_FSIZE binds root too, unlike a read-only directory; SIGXFSZ is
    ignored so the write fails instead of killing the process.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
