"""File sinks: the chain as JSON lines per writer, and the checkpoint copy.

Layout (``<writer>`` never contains a dot, so names are unambiguous):
- ``<dir>/<writer>.jsonl`` is the writer's current file;
- when it has reached ``rotate_bytes``, the next batch first moves it to
  ``<dir>/<writer>.<n>.jsonl`` (``n`` = 000001, 000002, ... oldest first) and
  starts a new current file. Rotation never splits a batch and never breaks
  the chain: the first entry of the new file links to the last of the old.
- ``<checkpoint_dir>/<writer>.jsonl`` holds the writer's checkpoint records.

Each sink owns one worker thread, so its file operations (open, write, fsync,
rename, close) run in order and never on the event loop. Files are created
exclusively (an existing file is never appended to: a writer id is never
reused), without following symlinks, mode 0600 in a 0700 directory; every
create and rename is followed by an fsync of the directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from audit.checkpoint import Checkpoint
from audit.entry import Entry

log = logging.getLogger("tokengate.audit")

_CREATE = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def segment_name(writer: str, number: int) -> str:
    """The file name of a writer's rotated file ``number`` (1 = oldest)."""
    return f"{writer}.{number:06d}.jsonl"


class _AppendFile:
    """One append-only file, used from a single thread; optionally rotated by size."""

    def __init__(self, directory: Path, writer: str, rotate_bytes: int | None) -> None:
        self._dir = directory
        self._writer = writer
        self._path = directory / f"{writer}.jsonl"
        self._rotate_bytes = rotate_bytes
        self._fd: int | None = None
        self._size = 0
        self._segments = 0

    def append(self, data: bytes) -> None:
        """Write ``data`` and fsync; open or rotate the file first when due."""
        fd = self._current()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
            self._size += written
        os.fsync(fd)

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _current(self) -> int:
        """The open file descriptor, after opening or rotating when due."""
        if self._fd is None:
            return self._open()
        if self._rotate_bytes is not None and self._size >= self._rotate_bytes:
            self.close()
            self._segments += 1
            # link + unlink instead of rename: never overwrite an existing file
            os.link(self._path, self._dir / segment_name(self._writer, self._segments))
            os.unlink(self._path)
            _fsync_dir(self._dir)
            return self._open()
        return self._fd

    def _open(self) -> int:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._path, _CREATE, 0o600)
        self._fd, self._size = fd, 0
        _fsync_dir(self._dir)
        return fd


def _fsync_dir(directory: Path) -> None:
    """Make a create/rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ThreadedFile:
    """An _AppendFile driven from the event loop through its own single worker thread.

    ``close`` waits at most ``close_timeout`` for the thread (a write stuck on a
    hung disk must not hang shutdown); the close still runs once it is free.
    """

    def __init__(self, file: _AppendFile, label: str, close_timeout: float) -> None:
        self._file = file
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=label)
        self._close_timeout = close_timeout
        self._closed = False

    async def run(self, fn: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def append(self, data: bytes) -> None:
        await self.run(lambda: self._file.append(data))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending = asyncio.get_running_loop().run_in_executor(self._executor, self._file.close)
        try:
            await asyncio.wait_for(asyncio.shield(pending), self._close_timeout)
        except TimeoutError:
            log.warning("audit: file sink still busy at close; it closes when its write ends")
        finally:
            self._executor.shutdown(wait=False)


class FileEntrySink:
    """Chain entries as ``<dir>/<writer>.jsonl`` with size rotation (fsync per batch)."""

    def __init__(
        self, directory: Path, writer: str, *, rotate_bytes: int, close_timeout: float = 10.0
    ) -> None:
        file = _AppendFile(directory, writer, rotate_bytes)
        self._file = _ThreadedFile(file, "audit-file", close_timeout)

    @property
    def name(self) -> str:
        return "file"

    async def write_entries(self, entries: Sequence[Entry]) -> None:
        await self._file.append(b"".join(e.line for e in entries))

    async def close(self) -> None:
        await self._file.close()


class FileCheckpointSink:
    """Checkpoint records as ``<checkpoint_dir>/<writer>.jsonl`` (fsync per write)."""

    def __init__(self, directory: Path, writer: str, *, close_timeout: float = 10.0) -> None:
        self._file = _ThreadedFile(
            _AppendFile(directory, writer, None), "audit-ckpt", close_timeout
        )

    @property
    def name(self) -> str:
        return "checkpoint file"

    async def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        await self._file.append(b"".join(c.record_line() for c in checkpoints))

    async def close(self) -> None:
        await self._file.close()
