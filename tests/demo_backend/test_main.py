"""``python -m demo_backend`` as the lead's ``tokengate demo`` starts it: a real process.

Behind tokengate, the gateway's JWKS is served by a separate plain HTTP server
process and requests are signed with the gateway's own code.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_backend.sessions import KEY_FILE

from proxy.auth.claims import MemoryReplayGuard
from proxy.auth.jose import HmacKey, LocalSigningKey
from proxy.auth.login_assertion import LoginAssertionVerifier
from tests.conftest import free_port
from tests.demo_backend.proof_support import ANONYMOUS, Gateway, jwk_of, new_key, user


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


# -- behind tokengate ----------------------------------------------------------


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo_backend", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--no-verify-tokengate", "--tokengate-jwks-url", "https://gw.example/jwks.json"],
            "--no-verify-tokengate contradicts --tokengate-jwks-url",
        ),
        (
            ["--tokengate-jwks-url", "http://gw.example/jwks.json"],
            "plain-http JWKS URL must point at a loopback address",
        ),
        (["--tokengate-audience", ""], "audiences must not be empty"),
    ],
    ids=["contradiction", "plain-http", "empty-audience"],
)
def test_contradictory_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run(tmp_path, "--port", str(free_port()), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "data").exists()


def test_unreachable_jwks_stops_start_up_with_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/.well-known/tokengate/jwks.json"
    result = _run(tmp_path, "--port", str(free_port()), "--tokengate-jwks-url", url)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1
    assert "demo_backend: cannot start: jwks: fetch failed" in lines[0]


def test_open_login_secret_stops_start_up(tmp_path: Path) -> None:
    secret = tmp_path / "login.secret"
    secret.write_bytes(os.urandom(31) + b"!")
    secret.chmod(0o644)
    result = _run(
        tmp_path, "--port", str(free_port()), "--tokengate-login-secret-file", str(secret)
    )
    assert result.returncode == 1
    assert "cannot start:" in result.stderr
    assert "must not be readable by group or others" in result.stderr


def _request(
    base: str, method: str, target: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(f"{base}{target}", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return int(e.code), dict(e.headers), e.read()


@pytest.fixture
def jwks_url(tmp_path: Path) -> Iterator[tuple[str, LocalSigningKey]]:
    """The gateway's JWKS, served by a separate plain HTTP server process."""
    key = new_key()
    root = tmp_path / "www"
    (root / ".well-known" / "tokengate").mkdir(parents=True)
    (root / ".well-known" / "tokengate" / "jwks.json").write_text(
        json.dumps({"keys": [jwk_of(key)]})
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(root),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/.well-known/tokengate/jwks.json"
        for _ in range(200):
            try:
                _get(url)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        yield url, key
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_process_behind_tokengate_checks_proofs_and_asserts_logins(
    tmp_path: Path, jwks_url: tuple[str, LocalSigningKey]
) -> None:
    url, key = jwks_url
    secret = os.urandom(31) + b"!"
    secret_file = tmp_path / "login.secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo_backend",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--tokengate-jwks-url",
            url,
            "--tokengate-login-secret-file",
            str(secret_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    gateway = Gateway(key=key, authority=f"127.0.0.1:{port}")
    try:
        _wait_until_up(proc, f"{base}/healthz")
        status, _, body = _request(base, "GET", "/api/me", {})
        assert status == 401
        assert json.loads(body)["error"] == "invalid_proof"

        signed = gateway.headers("GET", "/api/me", now=time.time(), who=user("carol", ("support",)))
        status, _, body = _request(base, "GET", "/api/me", signed)
        assert (status, json.loads(body)) == (200, {"username": "carol", "roles": ["support"]})

        login = json.dumps({"username": "bob", "password": "bob"}).encode()
        headers = gateway.headers(
            "POST",
            "/login",
            now=time.time(),
            who=ANONYMOUS,
            body=login,
            extra={"Content-Type": "application/json", "Tokengate-Login-Nonce": "n-123"},
        )
        status, answer, _ = _request(base, "POST", "/login", headers, login)
        assert status == 200
        verifier = LoginAssertionVerifier(
            key=HmacKey(secret), audience="tokengate", replay=MemoryReplayGuard(now=time.time)
        )
        got = await verifier.verify(answer["Tokengate-Login"], nonce="n-123", now=time.time())
        assert got.sub == "bob"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert secret.hex() not in out + err
    assert "request proof refused (signature) on GET /api/me" in err


def test_no_verify_flag_keeps_todays_behaviour(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo_backend",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--no-verify-tokengate",
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
        proc.communicate(timeout=30)
    assert proc.returncode == 0
