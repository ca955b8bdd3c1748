"""File sinks: exclusive creation, permissions, rotation that never overwrites."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from audit.entry import GENESIS, Entry, build_entry
from audit.file_sink import FileCheckpointSink, FileEntrySink, segment_name

TS = "2025-01-02T03:04:05.000006Z"


def entries(start: int, count: int, prev: str = GENESIS) -> list[Entry]:
    out = []
    for seq in range(start, start + count):
        e = build_entry(
            writer="w",
            seq=seq,
            ts=TS,
            event="gateway.stop",
            fields={"reason": "r" * 100},
            prev=prev,
        )
        out.append(e)
        prev = e.hash
    return out


async def test_writes_lines_with_private_permissions(tmp_path: Path) -> None:
    sink = FileEntrySink(tmp_path / "audit", "w", rotate_bytes=1 << 20)
    batch = entries(0, 3)
    await sink.write_entries(batch)
    await sink.close()
    await sink.close()  # idempotent
    path = tmp_path / "audit" / "w.jsonl"
    assert path.read_bytes() == b"".join(e.line for e in batch)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_rotation_happens_between_batches_and_keeps_order(tmp_path: Path) -> None:
    sink = FileEntrySink(tmp_path, "w", rotate_bytes=4096)
    written: list[Entry] = []
    prev = GENESIS
    for start in range(0, 60, 6):
        batch = entries(start, 6, prev)
        prev = batch[-1].hash
        await sink.write_entries(batch)
        written += batch
    await sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    segments = [n for n in names if n != "w.jsonl"]
    assert segments == [segment_name("w", i) for i in range(1, len(segments) + 1)]
    assert len(segments) >= 2
    files = [tmp_path / n for n in segments] + [tmp_path / "w.jsonl"]
    assert b"".join(f.read_bytes() for f in files) == b"".join(e.line for e in written)
    for f in files[:-1]:
        assert f.stat().st_size >= 4096
        assert f.read_bytes().count(b"\n") % 6 == 0  # a batch is never split


async def test_an_existing_file_is_never_appended_to(tmp_path: Path) -> None:
    (tmp_path / "w.jsonl").write_bytes(b"someone else's data\n")
    sink = FileEntrySink(tmp_path, "w", rotate_bytes=1 << 20)
    with pytest.raises(FileExistsError):
        await sink.write_entries(entries(0, 1))
    await sink.close()
    assert (tmp_path / "w.jsonl").read_bytes() == b"someone else's data\n"


async def test_a_symlink_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    os.symlink(target, tmp_path / "w.jsonl")
    sink = FileEntrySink(tmp_path, "w", rotate_bytes=1 << 20)
    with pytest.raises(FileExistsError):
        await sink.write_entries(entries(0, 1))
    await sink.close()
    assert target.read_bytes() == b""


async def test_rotation_never_overwrites_an_existing_segment(tmp_path: Path) -> None:
    sink = FileEntrySink(tmp_path, "w", rotate_bytes=4096)
    first = entries(0, 20)
    await sink.write_entries(first)
    (tmp_path / segment_name("w", 1)).write_bytes(b"planted\n")
    with pytest.raises(FileExistsError):
        await sink.write_entries(entries(20, 1, first[-1].hash))
    await sink.close()
    assert (tmp_path / segment_name("w", 1)).read_bytes() == b"planted\n"


async def test_checkpoint_sink_appends_records(tmp_path: Path) -> None:
    from audit import Ed25519CheckpointSigner
    from audit.checkpoint import sign_checkpoint

    signer = Ed25519CheckpointSigner.generate()
    cps = [
        sign_checkpoint(signer, writer="w", covered=e, ts=TS, final=False) for e in entries(0, 2)
    ]
    sink = FileCheckpointSink(tmp_path / "cp", "w")
    await sink.write_checkpoints(cps[:1])
    await sink.write_checkpoints(cps[1:])
    await sink.close()
    assert (tmp_path / "cp" / "w.jsonl").read_bytes() == b"".join(c.record_line() for c in cps)
