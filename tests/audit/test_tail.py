"""tail: readable, terminal-safe lines; last N across writers and files; following rotations."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from audit.entry import GENESIS, Entry, build_entry
from audit.file_sink import segment_name
from audit.tail import follow, format_entry, last_lines, safe_text, tail_lines


def chain(writer: str, count: int, *, start_second: int = 0) -> list[Entry]:
    out: list[Entry] = []
    prev = GENESIS
    for seq in range(count):
        ts = f"2030-01-01T00:00:{start_second + 2 * seq:02d}.000000Z"
        e = build_entry(
            writer=writer,
            seq=seq,
            ts=ts,
            event="gateway.stop",
            fields={"reason": f"{writer}{seq}"},
            prev=prev,
        )
        out.append(e)
        prev = e.hash
    return out


def test_an_entry_prints_on_one_readable_line() -> None:
    e = build_entry(
        writer="w",
        seq=3,
        ts="2030-01-01T00:00:00.000000Z",
        event="policy.reload",
        fields={"result": "ok", "files": 2, "config_digest": None},
        prev=GENESIS,
    )
    assert format_entry(e.line, "w.jsonl") == (
        "2030-01-01T00:00:00.000000Z",
        '2030-01-01T00:00:00.000000Z w #3 policy.reload config_digest=null files=2 result="ok"',
    )


def test_terminal_control_characters_are_escaped() -> None:
    e = build_entry(
        writer="w",
        seq=0,
        ts="2030-01-01T00:00:00.000000Z",
        event="gateway.stop",
        fields={"reason": "\x1b[2J\u202egnp.exe\u2028\x85ok é"},
        prev=GENESIS,
    )
    _, line = format_entry(e.line, "w.jsonl")
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert "\u2028" not in line
    assert "\x85" not in line
    assert '"\\u001b[2J\\u202egnp.exe\\u2028\\u0085ok é"' in line
    assert safe_text("\U000e0001x") == "\\U000e0001x"


def test_unreadable_lines_show_a_placeholder_not_their_bytes() -> None:
    assert format_entry(b"\x1b]0;owned\x07 not json", "w.jsonl") == (
        "",
        "<unreadable line in w.jsonl>",
    )
    assert (
        format_entry(b'{"fields": 1}', "w\u202e.jsonl")[1] == "<unreadable line in w\\u202e.jsonl>"
    )


def test_last_lines_reads_backwards_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"".join(b"%06d" % i + b"x" * 5000 + b"\n" for i in range(40)))
    got = last_lines(path, 3)
    assert [g[:6] for g in got] == [b"000037", b"000038", b"000039"]
    assert last_lines(path, 0) == []
    assert len(last_lines(path, 100)) == 40
    path.write_bytes(b"a\nb\npartial")
    assert last_lines(path, 2) == [b"b", b"partial"]


def test_tail_merges_writers_and_rotated_files_by_time(tmp_path: Path) -> None:
    a, b = chain("a", 6), chain("b", 3, start_second=1)
    (tmp_path / segment_name("a", 1)).write_bytes(b"".join(e.line for e in a[:4]))
    (tmp_path / "a.jsonl").write_bytes(b"".join(e.line for e in a[4:]))
    (tmp_path / "b.jsonl").write_bytes(b"".join(e.line for e in b))
    lines = tail_lines([tmp_path], 5)
    assert [" ".join(line.split()[1:3]) for line in lines] == [
        "a #2",
        "b #2",
        "a #3",
        "a #4",
        "a #5",
    ]
    assert lines[-1] == '2030-01-01T00:00:10.000000Z a #5 gateway.stop reason="a5"'
    assert tail_lines([tmp_path], 0) == []


def test_follow_reads_new_entries_rotations_and_new_writers(tmp_path: Path) -> None:
    a = chain("a", 6)
    current = tmp_path / "a.jsonl"
    current.write_bytes(a[0].line)
    steps: Iterator[None] = iter(
        [
            None,  # 1: append two entries
            None,  # 2: rotate (rest written to the old file first) and start a new file
            None,  # 3: a new writer appears
        ]
    )
    actions: list[Callable[[], object]] = [
        lambda: _append(current, a[1].line + a[2].line),
        lambda: _rotate(tmp_path, current, a[3].line, a[4].line + a[5].line),
        lambda: (tmp_path / "b.jsonl").write_bytes(chain("b", 1, start_second=50)[0].line),
    ]

    def sleep(_: float) -> None:
        next(steps)
        actions.pop(0)()

    out = list(islice(follow([tmp_path], n=1, sleep=sleep), 7))
    assert [line.split()[1] + line.split()[2] for line in out] == [
        "a#0",
        "a#1",
        "a#2",
        "a#3",
        "a#4",
        "a#5",
        "b#0",
    ]


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def _rotate(directory: Path, current: Path, tail_of_old: bytes, start_of_new: bytes) -> None:
    _append(current, tail_of_old)
    os.link(current, directory / segment_name("a", 1))
    current.unlink()
    current.write_bytes(start_of_new)
