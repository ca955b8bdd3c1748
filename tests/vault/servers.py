"""Private servers for vault tests: moto_server (S3) and PostgreSQL, started and stopped here.

Each is a real server process on a free port in its own temporary directory,
so a test may stop, freeze (SIGSTOP) or kill it without touching the shared
services. Private Redis servers come from :mod:`tests.proxy.sessions.servers`.
"""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port
from tests.vault.certs import TlsFiles


def _wait(check: object, what: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout} s")


@dataclass
class Moto:
    """A private moto_server over HTTP (or HTTPS with ``tls``)."""

    port: int
    proc: subprocess.Popen[bytes]
    tls: bool = False

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        _stop(self.proc)


def start_moto(tls: TlsFiles | None = None) -> Moto:
    """Start ``moto_server`` on a free port (HTTPS with ``tls``) and wait until it answers."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    https = ["-c", str(tls.cert), "-k", str(tls.key)] if tls else []
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port), *https],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Moto(port, proc, tls=tls is not None)
    context = ssl.create_default_context(cafile=str(tls.ca)) if tls else None

    def _up() -> bool:
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1, context=context):
                return True
        except (urllib.error.URLError, OSError):
            return False

    try:
        _wait(_up, "moto_server", proc, 30)
    except BaseException:
        server.stop()
        raise
    return server


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary from /usr/lib/postgresql/<version>/bin (newest version)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return found[-1]


def pg_user() -> str | None:
    """PostgreSQL refuses to run as root: then the cluster runs as ``postgres``."""
    return "postgres" if os.geteuid() == 0 else None


@dataclass
class Postgres:
    """A private PostgreSQL cluster run as the current user (``postgres`` under root)."""

    port: int
    data: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"postgresql://{pg_user() or getpass.getuser()}@127.0.0.1:{self.port}/postgres"

    def pids(self) -> list[int]:
        """The postmaster and its children (to freeze them all)."""
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                kids.append(int(stat.parent.name))
        return [self.proc.pid, *kids]

    def freeze(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.thaw()
        _stop(self.proc, sig=signal.SIGQUIT)  # immediate shutdown, like a crash


def init_postgres(data: Path) -> None:
    """``initdb`` a cluster in ``data`` (trust auth on the local host only).

    ``data``'s parent must be reachable by :func:`pg_user` (not a 0700 pytest dir under root).
    """
    user = pg_user()
    data.mkdir(mode=0o700)
    if user is not None:
        shutil.chown(data.parent, user)
        shutil.chown(data, user)
    subprocess.run(
        [pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", user or getpass.getuser(),
         "--no-sync"],
        check=True,
        capture_output=True,
        user=user,
    )  # fmt: skip


def start_postgres(data: Path, port: int | None = None, tls: TlsFiles | None = None) -> Postgres:
    """Run ``postgres`` on ``data`` (already initialised) on a free port; ``tls`` turns SSL on."""
    port = port or free_port()
    ssl_args: list[str] = []
    if tls is not None:
        ssl_args = ["-c", "ssl=on", "-c", f"ssl_cert_file={tls.cert}",
                    "-c", f"ssl_key_file={tls.key}"]  # fmt: skip
        if (user := pg_user()) is not None:
            shutil.chown(tls.key, user)
    log = (data.parent / f"postgres-{port}.log").open("ab")
    proc = subprocess.Popen(
        [pg_bin("postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
         "-k", str(data), "-c", "fsync=on", "-c", "max_connections=20", *ssl_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        user=pg_user(),
    )  # fmt: skip
    log.close()
    server = Postgres(port, data, proc)

    def _ready() -> bool:
        done = subprocess.run(
            [pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
            capture_output=True,
        )
        return done.returncode == 0

    try:
        _wait(_ready, "postgres", proc, 30)
    except BaseException:
        server.stop()
        raise
    return server


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
