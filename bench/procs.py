"""Server processes for the benchmarks: start on free ports, wait until ready, always stop.

Each server runs in its own session (process group), so stopping it also stops
the workers it forked (nginx, ``tokengate serve --workers 2``), and a Ctrl-C in
the terminal reaches only the harness, which then stops every server itself.
Output goes to a log file per server, never to a pipe nobody reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType


class BenchError(Exception):
    """A benchmark target could not be started or measured."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 2.0,
    method: str = "GET",
    data: bytes | None = None,
) -> int:
    """Status of a request to ``url`` (a GET unless said); 0 when nothing answers."""
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError):
        return 0


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a server's log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    """One started server process (and its process group)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL it if it has not exited after ``grace`` seconds."""
        if self.proc.poll() is not None:
            self._reap_group()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=grace)
        self._reap_group()

    def _reap_group(self) -> None:
        # Workers may outlive a leader that exited on its own: they share its group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class Servers:
    """Starts servers and stops every one still running on exit, whatever happened."""

    def __init__(self, logdir: Path) -> None:
        self._logdir = logdir
        self._running: list[Server] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 30.0,
    ) -> Server:
        """Run ``argv`` and wait until every URL in ``ready`` answers 200."""
        log = self._logdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        server = Server(name, proc, log)
        self._running.append(server)
        deadline = time.monotonic() + timeout
        pending = list(ready)
        while pending:
            if not server.alive():
                self.stop(server)
                raise BenchError(f"{name}: exited with {proc.returncode}\n{log_tail(log)}")
            if time.monotonic() > deadline:
                self.stop(server)
                raise BenchError(f"{name}: not ready after {timeout:.0f}s\n{log_tail(log)}")
            if http_status(pending[0], timeout=1.0) == 200:
                pending.pop(0)
            else:
                time.sleep(0.1)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self._running:
            self._running.remove(server)

    def session_ids(self) -> list[int]:
        """Session ids of the running servers (each leads its own session)."""
        return [s.proc.pid for s in self._running]

    def stop_all(self) -> None:
        for server in reversed(list(self._running)):
            self.stop(server)

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def signals_as_interrupt() -> None:
    """Make SIGTERM and SIGINT raise KeyboardInterrupt so that cleanup always runs.

    SIGINT too: a shell starts background jobs with SIGINT ignored, and Python
    then never installs its own handler.
    """

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)
