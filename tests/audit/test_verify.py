"""The verifier: every tamper kind is detected, located and named; intact logs pass."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import Ed25519CheckpointSigner, open_audit_log
from audit.checkpoint import checkpoint_from_entry, sign_checkpoint
from audit.entry import Entry, build_entry, parse_entry
from audit.keys import keys_from_jwks
from audit.verify import Finding, Kind, Line, Location, Report, verify_log

from .support import (
    WRITER,
    LogDirs,
    config,
    dirs_of,
    read_lines,
    verify_dirs,
    write_lines,
    write_log,
)

# 12 events with a checkpoint every 5: seq 0-4 events, 5 checkpoint, 6-10 events,
# 11 checkpoint, 12-13 events, 14 closing checkpoint. File line = seq + 1.
EVENTS = 12


@pytest.fixture
async def log(tmp_path: Path, signer: Ed25519CheckpointSigner) -> LogDirs:
    return await write_log(tmp_path, signer, EVENTS)


def only(report: Report) -> Finding:
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


def rebuilt(entry: Entry, **changes: object) -> Entry:
    """``entry`` with changes and a correct hash (an attacker who re-hashes)."""
    values = {
        "writer": entry.writer,
        "seq": entry.seq,
        "ts": entry.ts,
        "event": entry.event,
        "fields": entry.fields,
        "prev": entry.prev,
    }
    values.update(changes)
    return build_entry(**values)  # type: ignore[arg-type]


def rechain(entries: list[Entry], start: int) -> list[Entry]:
    """Re-link and re-hash ``entries`` from ``start`` on, renumbering seq (a full cover-up)."""
    out = entries[:start]
    for entry in entries[start:]:
        prev = out[-1].hash if out else entry.prev
        out.append(rebuilt(entry, seq=len(out), prev=prev))
    return out


def tamper(dirs: LogDirs, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    path = dirs.current()
    write_lines(path, edit(read_lines(path)))


def entries(dirs: LogDirs) -> list[Entry]:
    return [parse_entry(line) for line in read_lines(dirs.current())]


def test_an_intact_log_verifies(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    report = verify_dirs(log, signer)
    assert report.ok
    [writer] = report.writers
    assert (writer.writer, writer.entries, writer.checkpoints, writer.closed) == (
        WRITER,
        15,
        3,
        True,
    )
    assert verify_dirs(log, signer, with_sink=False).ok


def check(report: Report, kind: Kind, line: int | None, seq: int | None) -> Finding:
    finding = only(report)
    assert finding.kind is kind, finding
    assert finding.writer == WRITER
    assert finding.seq == seq, finding
    if line is not None:
        assert finding.location is not None
        assert finding.location.line == line, finding
        assert finding.location.source.endswith(f"{WRITER}.jsonl")
    return finding


@pytest.mark.parametrize(("index", "line", "seq"), [(7, 8, 7), (0, 1, 0), (5, 6, 5), (13, 14, 13)])
def test_a_deleted_entry_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner, index: int, line: int, seq: int
) -> None:
    tamper(log, lambda lines: lines[:index] + lines[index + 1 :])
    finding = check(verify_dirs(log, signer), Kind.DELETED, line, seq)
    assert f"seq {seq} missing" in finding.detail


def test_an_inserted_entry_that_links_correctly_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    chain = entries(log)
    forged = build_entry(
        writer=WRITER,
        seq=3,
        ts=chain[3].ts,
        event="gateway.stop",
        fields={"reason": "forged"},
        prev=chain[2].hash,
    )
    tamper(log, lambda lines: [*lines[:3], forged.line, *lines[3:]])
    check(verify_dirs(log, signer), Kind.INSERTED, 4, 3)


def test_an_inserted_entry_that_does_not_link_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    forged = build_entry(
        writer=WRITER, seq=3, ts=entries(log)[3].ts, event="gateway.stop", fields={}, prev="ab" * 32
    )
    tamper(log, lambda lines: [*lines[:3], forged.line, *lines[3:]])
    check(verify_dirs(log, signer), Kind.INSERTED, 4, 3)


def test_a_replayed_entry_is_named(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:7], lines[2], *lines[7:]])
    check(verify_dirs(log, signer), Kind.INSERTED, 8, 2)


def test_a_duplicated_entry_is_named(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:7], lines[6], *lines[7:]])
    finding = check(verify_dirs(log, signer), Kind.INSERTED, 8, 6)
    assert "duplicate" in finding.detail


def test_an_inserted_foreign_line_is_named(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:4], b'{"note":"hello"}\n', *lines[4:]])
    check(verify_dirs(log, signer), Kind.INSERTED, 5, 4)


def test_swapped_entries_are_named(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:7], lines[8], lines[7], *lines[9:]])
    check(verify_dirs(log, signer), Kind.REORDERED, 8, 8)


def test_an_entry_moved_later_is_named(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:2], *lines[3:10], lines[2], *lines[10:]])
    check(verify_dirs(log, signer), Kind.REORDERED, 3, 3)


def test_an_edited_entry_is_named(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:7], lines[7].replace(b"reason 6", b"reason X"), *lines[8:]])
    finding = check(verify_dirs(log, signer), Kind.EDITED, 8, 7)
    assert finding.detail == "content does not match its hash"


def test_an_edited_and_rehashed_entry_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    chain = entries(log)
    forged = rebuilt(chain[7], fields={"reason": "nothing to see"})
    tamper(log, lambda lines: [*lines[:7], forged.line, *lines[8:]])
    check(verify_dirs(log, signer), Kind.EDITED, 8, 7)


@pytest.mark.parametrize("with_sink", [True, False])
def test_a_rewritten_chain_is_caught_by_the_next_checkpoint(
    log: LogDirs, signer: Ed25519CheckpointSigner, with_sink: bool
) -> None:
    chain = entries(log)
    chain[7] = rebuilt(chain[7], fields={"reason": "nothing to see"})
    forged = rechain(chain, 7)
    tamper(log, lambda lines: [e.line for e in forged])
    report = verify_dirs(log, signer, with_sink=with_sink)
    if with_sink:  # the second sink signed entry 10's original hash: caught one entry earlier
        finding = check(report, Kind.EDITED, 11, 10)
        assert finding.detail == "entry differs from the one the second sink signed"
    else:
        finding = check(report, Kind.EDITED, 12, 11)
        assert "entries seq 6..10 were rewritten" in finding.detail


def test_a_deletion_covered_up_by_renumbering_is_caught(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    chain = entries(log)
    forged = rechain(chain[:7] + chain[8:], 7)
    tamper(log, lambda lines: [e.line for e in forged])
    check(verify_dirs(log, signer, with_sink=False), Kind.EDITED, 11, 10)


def test_truncation_without_second_sink_is_reported_as_unclosed(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    tamper(log, lambda lines: lines[:13])
    finding = check(verify_dirs(log, signer, with_sink=False), Kind.TRUNCATED, 13, 13)
    assert "no closing checkpoint after seq 12" in finding.detail


@pytest.mark.parametrize("keep", [13, 12, 6])
def test_truncation_is_proven_by_the_second_sink(
    log: LogDirs, signer: Ed25519CheckpointSigner, keep: int
) -> None:
    tamper(log, lambda lines: lines[:keep])
    finding = check(verify_dirs(log, signer), Kind.TRUNCATED, keep, keep)
    assert "the second sink holds a checkpoint over seq" in finding.detail


def test_a_cut_line_is_truncation(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [*lines[:-1], lines[-1][:40]])
    check(verify_dirs(log, signer, with_sink=False), Kind.TRUNCATED, 15, 14)


@pytest.mark.parametrize("same_kid", [False, True])
def test_a_forged_closing_checkpoint_has_a_bad_signature(
    log: LogDirs, signer: Ed25519CheckpointSigner, same_kid: bool
) -> None:
    chain = entries(log)[:12]
    attacker = Ed25519CheckpointSigner.generate()
    fake_signer = _KidLiar(attacker, signer.kid) if same_kid else attacker
    cp = sign_checkpoint(fake_signer, writer=WRITER, covered=chain[-1], ts=chain[-1].ts, final=True)
    fake = build_entry(
        writer=WRITER,
        seq=12,
        ts=cp.ts,
        event="audit.checkpoint",
        fields=cp.entry_fields(),
        prev=chain[-1].hash,
    )
    tamper(log, lambda lines: [*lines[:12], fake.line])
    finding = check(verify_dirs(log, signer, with_sink=False), Kind.BAD_SIGNATURE, 13, 12)
    assert finding.detail == (
        "checkpoint signature does not verify"
        if same_kid
        else "checkpoint signed by an unknown key"
    )


class _KidLiar:
    def __init__(self, inner: Ed25519CheckpointSigner, kid: str) -> None:
        self.inner, self._kid = inner, kid

    @property
    def kid(self) -> str:
        return self._kid

    def sign(self, message: bytes) -> bytes:
        return self.inner.sign(message)

    def public_jwk(self) -> dict[str, str]:
        return self.inner.public_jwk()


def test_an_altered_checkpoint_signature_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    chain = entries(log)
    fields = dict(chain[5].fields)
    fields["sig"] = "A" * 86
    chain[5] = rebuilt(chain[5], fields=fields)
    forged = rechain(chain, 5)
    tamper(log, lambda lines: [e.line for e in forged])
    check(verify_dirs(log, signer, with_sink=False), Kind.BAD_SIGNATURE, 6, 5)


def test_the_wrong_key_fails_and_the_right_jwks_passes(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    from audit.sources import file_streams, find_log_files

    def run(keys: dict[str, Ed25519PublicKey]) -> Report:
        return verify_log(file_streams(find_log_files([log.log_dir])), keys=keys)

    other = Ed25519CheckpointSigner.generate()
    assert only(run({other.kid: other.public_key()})).kind is Kind.BAD_SIGNATURE
    assert run(keys_from_jwks({"keys": [signer.public_jwk(), other.public_jwk()]})).ok


def test_an_entry_after_the_closing_checkpoint_is_inserted(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    last = entries(log)[-1]
    extra = build_entry(
        writer=WRITER, seq=15, ts=last.ts, event="gateway.stop", fields={}, prev=last.hash
    )
    tamper(log, lambda lines: [*lines, extra.line])
    finding = check(verify_dirs(log, signer, with_sink=False), Kind.INSERTED, 16, 15)
    assert "after the closing checkpoint" in finding.detail


def test_a_log_moved_to_another_writers_name_is_caught(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    log.current().rename(log.log_dir / "other-9-ffff.jsonl")
    report = verify_dirs(log, signer)
    kinds = {(f.writer, f.kind) for f in report.findings}
    assert ("other-9-ffff", Kind.INSERTED) in kinds
    assert (WRITER, Kind.DELETED) in kinds  # the second sink knows the writer, its file is gone


def test_a_tampered_second_sink_record_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    path = log.checkpoint_dir / f"{WRITER}.jsonl"
    lines = read_lines(path)
    record = json.loads(lines[0])
    record["final"] = True
    lines[0] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(path, lines)
    report = verify_dirs(log, signer)
    assert [f.kind for f in report.sink_findings] == [Kind.BAD_SIGNATURE]
    assert report.sink_findings[0].location == Location(str(path), 1)
    # the chain checkpoint that record stood for is now unconfirmed
    assert report.writers[0].finding is not None
    assert report.writers[0].finding.kind is Kind.SINK_MISMATCH


def test_a_checkpoint_missing_from_the_second_sink_is_named(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    path = log.checkpoint_dir / f"{WRITER}.jsonl"
    write_lines(path, read_lines(path)[1:])
    check(verify_dirs(log, signer), Kind.SINK_MISMATCH, 6, 5)
    assert verify_dirs(log, signer, with_sink=False).ok


async def test_a_deleted_rotated_file_is_found(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    dirs = await write_log(tmp_path, signer, 60, rotate_bytes=4096)
    second = dirs.log_dir / f"{WRITER}.000002.jsonl"
    third = dirs.log_dir / f"{WRITER}.000003.jsonl"
    first_missing = parse_entry(read_lines(second)[0]).seq
    second.unlink()
    finding = only(verify_dirs(dirs, signer))
    assert finding.kind is Kind.DELETED
    assert finding.location == Location(str(third), 1)
    assert finding.seq == first_missing


async def test_a_crashed_writer_is_unclosed_unless_allowed(
    tmp_path: Path, signer: Ed25519CheckpointSigner
) -> None:
    live = await open_audit_log(config(), data_dir=tmp_path / "live", signer=signer, writer=WRITER)
    for i in range(7):
        await live.emit("gateway.stop", reason=str(i))
    shutil.copytree(tmp_path / "live", tmp_path / "crashed")  # the disk as a crash leaves it
    await live.close()
    crashed = dirs_of(tmp_path / "crashed")
    finding = check(verify_dirs(crashed, signer), Kind.TRUNCATED, 8, 8)
    assert "truncated or its writer crashed" in finding.detail
    assert verify_dirs(crashed, signer, allow_unclosed=True).ok
    # allowing an open chain never hides what the second sink proves
    tamper(crashed, lambda lines: lines[:5])
    assert only(verify_dirs(crashed, signer, allow_unclosed=True)).kind is Kind.TRUNCATED


def test_an_empty_log_file_is_truncation(log: LogDirs, signer: Ed25519CheckpointSigner) -> None:
    tamper(log, lambda lines: [])
    finding = check(verify_dirs(log, signer, with_sink=False), Kind.TRUNCATED, None, 0)
    assert finding.location is None
    assert "no entries" in finding.detail


def test_findings_print_positions_without_values(
    log: LogDirs, signer: Ed25519CheckpointSigner
) -> None:
    tamper(log, lambda lines: [*lines[:7], lines[7].replace(b"reason 6", b"SECRET-9"), *lines[8:]])
    text = str(only(verify_dirs(log, signer)))
    assert text.startswith(f"edited at {log.current()}:8 writer={WRITER} seq=7: ")
    assert "SECRET" not in text


# ---- properties over one real log (written once, verified in memory) ----


@functools.cache
def sample_lines() -> tuple[bytes, ...]:
    """The lines of a closed log written by the real AuditLog, and its verification key."""
    import asyncio

    with tempfile.TemporaryDirectory() as tmp:
        dirs = asyncio.run(write_log(Path(tmp), SAMPLE_SIGNER, 9, checkpoint_every=4))
        return tuple(read_lines(dirs.current()))


SAMPLE_SIGNER = Ed25519CheckpointSigner.generate()


def verify_memory(data: bytes) -> Report:
    lines = [
        Line(Location("mem", i + 1), chunk)
        for i, chunk in enumerate(data.splitlines(keepends=True))
    ]
    return verify_log([(WRITER, lines)], keys={SAMPLE_SIGNER.kid: SAMPLE_SIGNER.public_key()})


def test_the_sample_is_intact() -> None:
    assert verify_memory(b"".join(sample_lines())).ok


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_edit_is_detected(data: st.DataObject) -> None:
    log = b"".join(sample_lines())
    at = data.draw(st.integers(0, len(log) - 1), label="offset")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != log[at]), label="byte")
    edited = log[:at] + bytes([byte]) + log[at + 1 :]
    assert not verify_memory(edited).ok


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_deleted_line_is_detected(data: st.DataObject) -> None:
    lines = list(sample_lines())
    at = data.draw(st.integers(0, len(lines) - 1))
    assert not verify_memory(b"".join(lines[:at] + lines[at + 1 :])).ok


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_two_swapped_lines_are_detected(data: st.DataObject) -> None:
    lines = list(sample_lines())
    a = data.draw(st.integers(0, len(lines) - 2))
    b = data.draw(st.integers(a + 1, len(lines) - 1))
    lines[a], lines[b] = lines[b], lines[a]
    report = verify_memory(b"".join(lines))
    assert only(report).kind is Kind.REORDERED


def test_checkpoint_entries_in_the_sample_cover_their_predecessor() -> None:
    chain = [parse_entry(line) for line in sample_lines()]
    for before, entry in itertools.pairwise(chain):
        if entry.event == "audit.checkpoint":
            cp = checkpoint_from_entry(entry)
            assert (cp.seq, cp.hash) == (before.seq, before.hash)
    assert dataclasses.replace(chain[0]) == chain[0]
