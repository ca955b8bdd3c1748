"""``tokengate demo`` as a subprocess for end-to-end tests, and a client's steps through it.

The demo runs exactly as a user starts it (fresh data dir, free ports, one
worker), with its stdout and stderr captured to files the test can search.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.conftest import free_port
from tests.integration.process import TOKENGATE
from tests.proxy.authn.test_mfa_routes import secret_of, totp_code

MFA = "/.tokengate/mfa"


@dataclass
class DemoProcess:
    """A running ``tokengate demo``: its process, public URL and captured output."""

    proc: subprocess.Popen[bytes]
    base: str
    stdout: Path
    stderr: Path


async def start_demo(data: Path, stdout: Path, stderr: Path, timeout: float = 30.0) -> DemoProcess:
    """Start the demo on free ports and wait until the gateway is ready and the app answers."""
    port, admin = free_port(), free_port()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [
                *(TOKENGATE, "demo", "--port", str(port), "--admin-port", str(admin)),
                *("--data-dir", str(data), "--workers", "1"),
            ],
            stdout=out,
            stderr=err,
        )
    demo = DemoProcess(proc, f"http://127.0.0.1:{port}", stdout, stderr)
    try:
        await _wait_up(demo, timeout)
    except BaseException:
        stop_demo(proc)
        raise
    return demo


async def _wait_up(demo: DemoProcess, timeout: float) -> None:
    # The demo prints its banner once the gateway and the app both answer.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if demo.proc.poll() is not None:
            raise AssertionError(f"demo exited: {demo.stderr.read_text(errors='replace')}")
        if b"Ctrl-C stops both" in demo.stdout.read_bytes():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"demo not up in time: {demo.stderr.read_text(errors='replace')}")


def stop_demo(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (the demo stops the gateway and the app) and wait; kill if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


async def login(s: aiohttp.ClientSession, base: str, user: str) -> None:
    """The demo app's login form, through the gateway (password = user name)."""
    async with s.post(f"{base}/login", json={"username": user, "password": user}) as r:
        assert r.status == 200, await r.text()


async def enrol_and_pass_totp(s: aiohttp.ClientSession, base: str) -> None:
    """Enrol TOTP for the session's user and pass it: the session now has fresh MFA."""
    async with s.post(f"{base}{MFA}/totp/enrol") as r:
        assert r.status == 200, await r.text()
        secret = secret_of(str((await r.json())["uri"]))
    async with s.post(f"{base}{MFA}/totp/confirm", json={"code": totp_code(secret)}) as r:
        assert r.status == 200, await r.text()
    # The confirming step is spent; the next one is inside the accepted window.
    async with s.post(f"{base}{MFA}/totp/verify", json={"code": totp_code(secret, 1)}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["status"] == "passed"
