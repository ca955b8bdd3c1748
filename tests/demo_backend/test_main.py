"""``python -m demo_backend`` as the lead's ``tokengate demo`` starts it: a real process."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from demo_backend.sessions import KEY_FILE

from tests.conftest import free_port


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return int(resp.status)


def _wait_until_up(proc: subprocess.Popen[str], url: str) -> None:
    # Readiness wait, not a timed assertion: bounded so a broken start fails the test.
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"demo_backend exited early with {proc.returncode}")
        try:
            if _get(url) == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise AssertionError("demo_backend did not come up")


def _login(base: str) -> int:
    req = urllib.request.Request(
        f"{base}/login",
        data=json.dumps({"username": "bob", "password": "bob"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return int(resp.status)


def test_module_serves_logs_one_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo_backend",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(proc, f"{base}/healthz")
        assert _login(base) == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"demo_backend: listening on http://127.0.0.1:{port}" in lines[0]
    secret = (data_dir / KEY_FILE).read_bytes()
    for encoded in (
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
    ):
        assert encoded not in out + err
    assert "password" not in out + err  # no request bodies or access log


def test_data_dir_is_required(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo_backend", "--port", str(free_port())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--data-dir" in result.stderr
    assert list(tmp_path.iterdir()) == []
