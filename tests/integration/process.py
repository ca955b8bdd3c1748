"""Running ``tokengate serve`` as a real process for integration tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

TOKENGATE = str(Path(sys.executable).with_name("tokengate"))


@dataclass
class GatewayProcess:
    """A started gateway: its process, ports, config and log file."""

    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    config: Path
    log_path: Path
    scheme: str = "http"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_gateway(config: Path, port: int, admin_port: int, *, workers: int = 1) -> GatewayProcess:
    """Start ``tokengate serve`` with stderr to a log file beside the config."""
    log_path = config.parent / f"gateway-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [TOKENGATE, "serve", "--config", str(config), "--workers", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return GatewayProcess(proc, port, admin_port, config, log_path)


async def wait_ready(gw: GatewayProcess, *, workers: int = 1, timeout: float = 30.0) -> None:
    """Wait until the admin listener answers and every worker logged that it listens."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if gw.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {gw.proc.returncode}:\n{gw.log()}")
            try:
                async with s.get(f"{gw.admin}/.tokengate/healthz") as r:
                    if r.status == 200 and gw.log().count("worker listening") >= workers:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"gateway did not become ready:\n{gw.log()}")


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def rss_kib(pid: int) -> int:
    """Current VmRSS of ``pid`` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc status")
