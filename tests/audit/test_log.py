"""AuditLog: durable emits, schema refusal, group commit, checkpoints, rotation, fail closed."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit import (
    AuditError,
    AuditLog,
    Auditor,
    AuditSchemaError,
    AuditUnavailableError,
    Ed25519CheckpointSigner,
    open_audit_log,
)
from audit.checkpoint import checkpoint_from_entry, parse_checkpoint_record
from audit.entry import GENESIS, WRITER, Entry, parse_entry
from audit.file_sink import FileCheckpointSink, FileEntrySink
from audit.log import new_writer_id

from .support import WRITER as W
from .support import config, dirs_of, file_size_limit, read_lines, verify_dirs, write_log


def entries_of(path: Path) -> list[Entry]:
    return [parse_entry(line) for line in read_lines(path)]


async def test_emit_returns_once_the_entry_is_on_disk(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log: Auditor = await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=W)
    await log.emit(
        "gateway.start", version="0.1.0", mode="development", workers=2, config_digest="ab"
    )
    [entry] = entries_of(tmp_path / "audit" / f"{W}.jsonl")
    assert (entry.writer, entry.seq, entry.prev, entry.event) == (W, 0, GENESIS, "gateway.start")
    assert entry.fields == {
        "version": "0.1.0",
        "mode": "development",
        "workers": 2,
        "config_digest": "ab",
    }
    assert isinstance(log, AuditLog)
    await log.close()


async def test_close_writes_a_final_checkpoint_and_the_log_verifies(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    dirs = await write_log(tmp_path, signer, 12)
    chain = entries_of(dirs.current())
    assert [e.event == "audit.checkpoint" for e in chain] == [
        *[False] * 5,
        True,
        *[False] * 5,
        True,
        False,
        False,
        True,
    ]
    cps = [checkpoint_from_entry(e) for e in chain if e.event == "audit.checkpoint"]
    assert [(c.seq, c.count, c.final) for c in cps] == [
        (4, 5, False),
        (10, 11, False),
        (13, 14, True),
    ]
    records = [parse_checkpoint_record(x) for x in read_lines(dirs.checkpoint_dir / f"{W}.jsonl")]
    assert records == cps
    report = verify_dirs(dirs, signer)
    assert report.ok, report.findings
    assert report.writers[0].closed
    assert report.writers[0].entries == 15


async def test_refused_events_write_nothing_and_leave_the_chain_usable(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log = await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=W)
    with pytest.raises(AuditSchemaError, match="has no field 'ssn'"):
        await log.emit("gateway.stop", reason="x", ssn="078-05-1120")
    with pytest.raises(AuditSchemaError, match="unknown event"):
        await log.emit("audit.checkpoint", covers_seq=1)
    with pytest.raises(AuditSchemaError, match="unknown event"):
        await log.emit("made.up")
    assert not (tmp_path / "audit").exists()
    await log.emit("gateway.stop", reason="ok")
    await log.close()
    assert [e.seq for e in entries_of(tmp_path / "audit" / f"{W}.jsonl")] == [0, 1]
    assert b"078-05-1120" not in (tmp_path / "audit" / f"{W}.jsonl").read_bytes()


class CountingSink:
    """A real file sink that also records the size of every batch it is handed."""

    def __init__(self, inner: FileEntrySink) -> None:
        self.inner = inner
        self.batches: list[int] = []

    @property
    def name(self) -> str:
        return "counting"

    async def write_entries(self, entries: Sequence[Entry]) -> None:
        self.batches.append(len(entries))
        await self.inner.write_entries(entries)

    async def close(self) -> None:
        await self.inner.close()


def counted_log(
    tmp_path: Path, signer: Ed25519CheckpointSigner, *, checkpoint_every: int, max_batch: int = 1024
) -> tuple[AuditLog, CountingSink]:
    sink = CountingSink(FileEntrySink(tmp_path / "audit", W, rotate_bytes=1 << 20))
    log = AuditLog(
        writer=W,
        signer=signer,
        entry_sinks=[sink],
        checkpoint_sinks=[FileCheckpointSink(tmp_path / "audit-checkpoints", W)],
        checkpoint_every=checkpoint_every,
        max_batch=max_batch,
    )
    log.start()
    return log, sink


async def test_concurrent_emitters_share_batches_in_one_chain(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log, sink = counted_log(tmp_path, signer, checkpoint_every=1000)
    await asyncio.gather(*(log.emit("gateway.stop", reason=f"r{i}") for i in range(200)))
    assert sum(sink.batches) == 200
    assert len(sink.batches) < 200  # group commit: one write + fsync serves many emits
    await log.close()
    chain = entries_of(tmp_path / "audit" / f"{W}.jsonl")
    assert [e.seq for e in chain] == list(range(201))
    assert sorted(str(e.fields["reason"]) for e in chain[:-1]) == sorted(
        f"r{i}" for i in range(200)
    )
    assert verify_dirs(dirs_of(tmp_path), signer).ok


async def test_batches_never_exceed_max_batch(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log, sink = counted_log(tmp_path, signer, checkpoint_every=1000, max_batch=16)
    await asyncio.gather(*(log.emit("gateway.stop", reason="x") for _ in range(100)))
    await log.close()
    assert max(sink.batches) <= 16
    assert sum(sink.batches) == 101


async def test_rotation_keeps_the_chain_across_files(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    dirs = await write_log(tmp_path, signer, 80, rotate_bytes=4096)
    files = sorted(dirs.log_dir.iterdir())
    assert len(files) >= 4
    rotated, current = files[:-1], dirs.current()
    assert [f.name for f in rotated] == [f"{W}.{i:06d}.jsonl" for i in range(1, len(rotated) + 1)]
    ordered = [*rotated, current]
    for older, newer in itertools.pairwise(ordered):
        assert entries_of(newer)[0].prev == entries_of(older)[-1].hash
        assert entries_of(newer)[0].seq == entries_of(older)[-1].seq + 1
    assert verify_dirs(dirs, signer).ok


async def test_a_full_disk_refuses_the_act_and_every_later_one(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log = await open_audit_log(
        config(checkpoint_every=1000), data_dir=tmp_path, signer=signer, writer=W
    )
    await log.emit("gateway.stop", reason="fits")
    size = (tmp_path / "audit" / f"{W}.jsonl").stat().st_size
    with file_size_limit(size + 100):
        results = await asyncio.gather(
            *(log.emit("gateway.stop", reason="r" * 200) for _ in range(5)), return_exceptions=True
        )
    assert all(isinstance(r, AuditUnavailableError) for r in results), results
    error = results[0]
    assert isinstance(error, AuditError)
    assert error.status == 503
    assert error.code == "audit_unavailable"
    assert isinstance(error.__cause__, OSError)
    assert not log.usable
    assert not await log.readiness_check().check()
    with pytest.raises(AuditUnavailableError, match="refuses entries"):
        await log.emit("gateway.stop", reason="after")
    await log.close()  # no closing checkpoint can be written; close still releases everything
    report = verify_dirs(dirs_of(tmp_path), signer, with_sink=False)
    assert not report.ok  # the chain ends in a partial line and has no closing checkpoint


async def test_an_unusable_log_directory_refuses_the_first_act(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    (tmp_path / "audit").write_bytes(b"")  # a file where the directory should be
    log = await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=W)
    with pytest.raises(AuditUnavailableError):
        await log.emit("gateway.stop", reason="x")
    await log.close()


async def test_an_unusable_checkpoint_sink_refuses_the_act_that_needs_it(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    (tmp_path / "audit-checkpoints").write_bytes(b"")
    log = await open_audit_log(
        config(checkpoint_every=3), data_dir=tmp_path, signer=signer, writer=W
    )
    await log.emit("gateway.stop", reason="1")
    await log.emit("gateway.stop", reason="2")
    with pytest.raises(AuditUnavailableError):
        await log.emit("gateway.stop", reason="3")  # its batch carries the first checkpoint
    with pytest.raises(AuditUnavailableError):
        await log.emit("gateway.stop", reason="4")
    await log.close()


class SignerFailingAfter:
    def __init__(self, inner: Ed25519CheckpointSigner, ok: int) -> None:
        self.inner, self.ok = inner, ok

    @property
    def kid(self) -> str:
        return self.inner.kid

    def sign(self, message: bytes) -> bytes:
        if self.ok <= 0:
            raise RuntimeError("key unavailable")
        self.ok -= 1
        return self.inner.sign(message)

    def public_jwk(self) -> dict[str, str]:
        return self.inner.public_jwk()


async def test_a_failing_signer_refuses_the_act_and_fails_the_log(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    broken = SignerFailingAfter(signer, ok=1)
    log = await open_audit_log(
        config(checkpoint_every=2), data_dir=tmp_path, signer=broken, writer=W
    )
    for i in range(3):
        await log.emit("gateway.stop", reason=str(i))
    with pytest.raises(AuditUnavailableError, match="checkpoint signing failed"):
        await log.emit("gateway.stop", reason="3")
    with pytest.raises(AuditUnavailableError):
        await log.emit("gateway.stop", reason="4")
    await log.close()
    assert [e.seq for e in entries_of(tmp_path / "audit" / f"{W}.jsonl")] == [0, 1, 2, 3]


class HangingSink:
    """An entry sink whose writes never complete (a hung disk or network)."""

    @property
    def name(self) -> str:
        return "hanging"

    async def write_entries(self, entries: Sequence[Entry]) -> None:
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


async def test_a_hung_sink_times_out_and_fails_closed(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log = AuditLog(
        writer=W,
        signer=signer,
        entry_sinks=[HangingSink()],
        checkpoint_sinks=[FileCheckpointSink(tmp_path, W)],
        write_timeout=0.05,
    )
    with pytest.raises(AuditUnavailableError) as caught:
        await log.emit("gateway.stop", reason="x")
    assert isinstance(caught.value.__cause__, TimeoutError)
    await log.close()


class GateSink:
    """A real file sink that waits for a gate before each write (to hold emits in flight)."""

    def __init__(self, inner: FileEntrySink, *, fail: bool = False) -> None:
        self.inner, self.fail = inner, fail
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    @property
    def name(self) -> str:
        return "gate"

    async def write_entries(self, entries: Sequence[Entry]) -> None:
        self.entered.set()
        await self.gate.wait()
        if self.fail:
            raise OSError(28, "No space left on device")
        await self.inner.write_entries(entries)

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.parametrize("fail", [False, True])
async def test_a_cancelled_emitter_does_not_unwrite_or_leak(
    tmp_path: Path, signer: Ed25519CheckpointSigner, caplog: pytest.LogCaptureFixture, fail: bool
) -> None:
    sink = GateSink(FileEntrySink(tmp_path / "audit", W, rotate_bytes=1 << 20), fail=fail)
    log = AuditLog(
        writer=W,
        signer=signer,
        entry_sinks=[sink],
        checkpoint_sinks=[FileCheckpointSink(tmp_path / "cp", W)],
    )
    task = asyncio.create_task(log.emit("gateway.stop", reason="x"))
    await sink.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.gate.set()
    if fail:
        with pytest.raises(AuditUnavailableError):
            await log.emit("gateway.stop", reason="y")
    else:
        await log.emit("gateway.stop", reason="y")
        assert [e.fields["reason"] for e in entries_of(tmp_path / "audit" / f"{W}.jsonl")] == [
            "x",
            "y",
        ]
    await log.close()
    import gc

    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_close_is_idempotent_and_refuses_later_emits(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log = await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=W)
    await log.emit("gateway.stop", reason="x")
    assert log.usable
    assert await log.readiness_check().check()
    await asyncio.gather(log.close(), log.close())
    await log.close()
    with pytest.raises(AuditUnavailableError, match="closed"):
        await log.emit("gateway.stop", reason="y")
    assert not await log.readiness_check().check()
    assert len(read_lines(tmp_path / "audit" / f"{W}.jsonl")) == 2


async def test_closing_an_unused_log_writes_nothing(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log = await open_audit_log(config(), data_dir=tmp_path, signer=signer)
    await log.close()
    assert not (tmp_path / "audit").exists() or not any((tmp_path / "audit").iterdir())


async def test_emits_racing_close_are_all_durable_before_the_final_checkpoint(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    log = await open_audit_log(
        config(checkpoint_every=1000), data_dir=tmp_path, signer=signer, writer=W
    )
    emits = [asyncio.create_task(log.emit("gateway.stop", reason=str(i))) for i in range(20)]
    await asyncio.sleep(0)  # let every emit enqueue
    await log.close()
    await asyncio.gather(*emits)
    chain = entries_of(tmp_path / "audit" / f"{W}.jsonl")
    assert len(chain) == 21
    assert chain[-1].fields["final"] is True


def test_writer_ids_are_unique_per_process_start() -> None:
    a, b = new_writer_id(), new_writer_id()
    assert a != b
    for w in (a, b):
        assert WRITER.match(w)
        assert f"-{os.getpid()}-" in w
        assert "." not in w


async def test_a_reused_writer_id_is_refused(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    await write_log(tmp_path, signer, 1)
    log = await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=W)
    with pytest.raises(AuditUnavailableError):
        await log.emit("gateway.stop", reason="x")
    await log.close()


@pytest.mark.parametrize("writer", ["has.dot", "has/slash", "-lead", "x" * 129, "sp ace"])
async def test_malformed_writer_ids_are_refused(
    tmp_path: Path, signer: Ed25519CheckpointSigner, writer: str
) -> None:
    with pytest.raises(AuditError, match="writer id"):
        await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=writer)


async def test_the_checkpoint_dir_may_not_be_the_log_dir(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    (tmp_path / "audit").mkdir()
    (tmp_path / "cp").symlink_to(tmp_path / "audit")
    with pytest.raises(AuditError, match="must differ"):
        await open_audit_log(config(checkpoint_dir=Path("cp")), data_dir=tmp_path, signer=signer)


async def test_timestamps_come_from_the_injected_clock(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ticks = iter(start + timedelta(seconds=i) for i in range(100))
    log = AuditLog(
        writer=W,
        signer=signer,
        entry_sinks=[FileEntrySink(tmp_path / "audit", W, rotate_bytes=1 << 20)],
        checkpoint_sinks=[FileCheckpointSink(tmp_path / "cp", W)],
        now=lambda: next(ticks),
    )
    await log.emit("gateway.stop", reason="x")
    await log.close()
    chain = entries_of(tmp_path / "audit" / f"{W}.jsonl")
    assert [e.ts for e in chain] == ["2030-01-01T00:00:00.000000Z", "2030-01-01T00:00:01.000000Z"]
    assert re.fullmatch(r"[\d\-T:.]+Z", chain[0].ts)


async def test_a_log_needs_both_kinds_of_sink(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    with pytest.raises(AuditError, match="at least one"):
        AuditLog(
            writer=W,
            signer=signer,
            entry_sinks=[],
            checkpoint_sinks=[FileCheckpointSink(tmp_path, W)],
        )


def test_failures_are_logged_without_values(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    signer = Ed25519CheckpointSigner.generate()

    async def run() -> None:
        (tmp_path / "audit").write_bytes(b"")
        log = await open_audit_log(config(), data_dir=tmp_path, signer=signer, writer=W)
        with pytest.raises(AuditUnavailableError):
            await log.emit("gateway.stop", reason="078-05-1120")
        await log.close()

    with caplog.at_level(logging.ERROR, logger="tokengate.audit"):
        asyncio.run(run())
    assert "persisting entries failed" in caplog.text
    assert "078-05-1120" not in caplog.text
