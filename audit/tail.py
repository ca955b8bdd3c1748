"""``tokengate audit tail``: entries as readable lines, the last N and then new ones.

Each entry prints as ``<ts> <writer> #<seq> <event> key=value ...`` with the
values as JSON. Every character that could steer a terminal (control and
format characters such as bidi overrides, line and paragraph separators) is
printed as an escape, so a log line can never rewrite the operator's screen.
Nothing is printed that is not in the log: a line that is not an entry shows
as a placeholder naming its file. ``tail`` does not verify; ``verify`` does.

Following works like ``tail -F``: each writer's current file is read as it
grows; when it is rotated away, the rest of the old file is drained before
the new current file is read from its start; writers that appear later are
picked up from their first line.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from audit.sources import LOG_NAME, find_log_files

_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BLOCK = 1 << 16


def safe_text(text: str) -> str:
    """``text`` with every control/format/separator character written as an escape."""
    out = []
    for ch in text:
        if unicodedata.category(ch) in _UNSAFE:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def format_entry(data: bytes, source: str) -> tuple[str, str]:
    """``(sort key, printable line)`` for one log line; unreadable lines get a placeholder."""
    try:
        obj = json.loads(data)
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("fields"), dict):
        return "", safe_text(f"<unreadable line in {source}>")
    ts, writer, seq, event = (str(obj.get(k)) for k in ("ts", "writer", "seq", "event"))
    parts = [ts, writer, f"#{seq}", event]
    for key, value in obj["fields"].items():
        parts.append(f"{key}={json.dumps(value, ensure_ascii=False)}")
    return ts, safe_text(" ".join(parts))


def last_lines(path: Path, n: int) -> list[bytes]:
    """The last ``n`` complete lines of ``path``, read backwards in blocks."""
    if n <= 0:
        return []
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        data, pos = b"", end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.split(b"\n")
    tail = lines[:-1] if data.endswith(b"\n") else lines  # a partial last line is still shown
    if pos > 0:
        tail = tail[1:]  # the first piece may be a partial line
    return [line for line in tail if line][-n:]


def tail_lines(paths: Sequence[Path], n: int) -> list[str]:
    """The last ``n`` entries over every writer under ``paths``, in time order."""
    rows: list[tuple[str, str]] = []
    for files in find_log_files(paths).by_writer.values():
        wanted: list[tuple[str, str]] = []
        for path in reversed(files):  # newest file first, until this writer has n lines
            got = [format_entry(line, path.name) for line in last_lines(path, n - len(wanted))]
            wanted = got + wanted
            if len(wanted) >= n:
                break
        rows.extend(wanted)
    rows.sort(key=lambda row: row[0])
    return [line for _, line in rows[-n:]] if n > 0 else []


@dataclass(slots=True)
class _Open:
    file: BinaryIO
    inode: int
    partial: bytes = b""


class Follower:
    """Reads what writers append to their current files, across rotations."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._roots = list(paths)
        self._open: dict[Path, _Open] = {}

    def start(self) -> None:
        """Begin at the end of every current file (what exists is already shown)."""
        for path in self._current_files():
            self._track(path, at_end=True)

    def poll(self) -> list[str]:
        """New entries since the last poll, in time order."""
        rows: list[tuple[str, str]] = []
        for path in self._current_files():
            if path not in self._open:
                self._track(path, at_end=False)
        for path, state in list(self._open.items()):
            rows += self._read(path, state)
            if self._rotated(path, state):
                rows += self._read(path, state)  # drain what was written before the rotation
                state.file.close()
                del self._open[path]
                if path.exists():
                    self._track(path, at_end=False)
                    rows += self._read(path, self._open[path])
        rows.sort(key=lambda row: row[0])
        return [line for _, line in rows]

    def close(self) -> None:
        """Close every file."""
        for state in self._open.values():
            state.file.close()
        self._open.clear()

    def _current_files(self) -> list[Path]:
        found: list[Path] = []
        for root in self._roots:
            if root.is_dir():
                for child in sorted(root.iterdir()):
                    match = LOG_NAME.match(child.name)
                    if match is not None and match.group("n") is None and child.is_file():
                        found.append(child)
            elif root.is_file():
                found.append(root)
        return found

    def _track(self, path: Path, *, at_end: bool) -> None:
        try:
            f = path.open("rb")
        except FileNotFoundError:
            return  # rotated away between listing and opening: picked up next poll
        if at_end:
            f.seek(0, os.SEEK_END)
        self._open[path] = _Open(f, os.fstat(f.fileno()).st_ino)

    def _read(self, path: Path, state: _Open) -> list[tuple[str, str]]:
        data = state.partial + state.file.read()
        *complete, state.partial = data.split(b"\n")
        return [format_entry(line, path.name) for line in complete if line]

    def _rotated(self, path: Path, state: _Open) -> bool:
        try:
            return path.stat().st_ino != state.inode
        except FileNotFoundError:
            return True


def follow(
    paths: Sequence[Path],
    *,
    n: int,
    interval: float = 0.5,
    sleep: Callable[[float], None],
) -> Iterator[str]:
    """The last ``n`` entries, then every new one as it is written (until the caller stops)."""
    follower = Follower(paths)
    try:
        follower.start()
        yield from tail_lines(paths, n)
        while True:
            lines = follower.poll()
            yield from lines
            if not lines:
                sleep(interval)
    finally:
        follower.close()
