"""Reading logs: file discovery and ordering, line numbering, checkpoint files."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import AuditUnavailableError
from audit.sources import checkpoint_file_lines, file_lines, file_streams, find_log_files
from audit.verify import Location


def touch(path: Path, data: bytes = b"") -> Path:
    path.write_bytes(data)
    return path


def test_directories_group_by_writer_in_rotation_order(tmp_path: Path) -> None:
    for name in [
        "a.jsonl",
        "a.000002.jsonl",
        "a.000010.jsonl",
        "a.000001.jsonl",
        "b-2_x.jsonl",
        "notes.txt",
        "c.jsonl.tmp",
    ]:
        touch(tmp_path / name)
    (tmp_path / "sub.jsonl").mkdir()
    files = find_log_files([tmp_path])
    assert files.complete
    assert {w: [p.name for p in ps] for w, ps in files.by_writer.items()} == {
        "a": ["a.000001.jsonl", "a.000002.jsonl", "a.000010.jsonl", "a.jsonl"],
        "b-2_x": ["b-2_x.jsonl"],
    }


def test_files_given_one_by_one_are_ordered_too(tmp_path: Path) -> None:
    current, old = touch(tmp_path / "a.jsonl"), touch(tmp_path / "a.000001.jsonl")
    files = find_log_files([current, old])
    assert not files.complete
    assert files.by_writer == {"a": [old, current]}


def test_explicit_files_must_be_audit_logs(tmp_path: Path) -> None:
    with pytest.raises(AuditUnavailableError, match="not an audit log file name"):
        find_log_files([touch(tmp_path / "x.log")])
    with pytest.raises(AuditUnavailableError, match="does not exist"):
        find_log_files([tmp_path / "missing"])


def test_lines_keep_their_newlines_and_numbers(tmp_path: Path) -> None:
    path = touch(tmp_path / "a.jsonl", b"one\ntwo\nthree")
    assert [(x.location, x.data) for x in file_lines(path)] == [
        (Location(str(path), 1), b"one\n"),
        (Location(str(path), 2), b"two\n"),
        (Location(str(path), 3), b"three"),
    ]


def test_streams_concatenate_a_writers_files(tmp_path: Path) -> None:
    touch(tmp_path / "a.000001.jsonl", b"1\n2\n")
    touch(tmp_path / "a.jsonl", b"3\n")
    [(writer, lines)] = list(file_streams(find_log_files([tmp_path])))
    got = [(x.location.source.rsplit("/", 1)[1], x.location.line, x.data) for x in lines]
    assert writer == "a"
    assert got == [
        ("a.000001.jsonl", 1, b"1\n"),
        ("a.000001.jsonl", 2, b"2\n"),
        ("a.jsonl", 1, b"3\n"),
    ]


def test_checkpoint_files_from_a_directory_or_a_file(tmp_path: Path) -> None:
    touch(tmp_path / "b.jsonl", b"b\n")
    touch(tmp_path / "a.jsonl", b"a\n")
    touch(tmp_path / "ignored.txt", b"x\n")
    assert [x.data for x in checkpoint_file_lines(tmp_path)] == [b"a\n", b"b\n"]
    assert [x.data for x in checkpoint_file_lines(tmp_path / "b.jsonl")] == [b"b\n"]
    with pytest.raises(AuditUnavailableError):
        list(checkpoint_file_lines(tmp_path / "missing"))


def test_unreadable_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").mkdir()
    with pytest.raises(AuditUnavailableError, match="cannot read"):
        list(file_lines(tmp_path / "a.jsonl"))
