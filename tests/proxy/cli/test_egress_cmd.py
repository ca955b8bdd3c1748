"""``tokengate egress ca|client create|serve``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import trustme
from click.testing import CliRunner
from cryptography import x509

from proxy.cli import _register, cli
from proxy.egress.clients import SECRET_RE, new_client_secret, secret_digest
from tests.proxy.egress.conftest import Credentials, write_config

ROUTES = """
egress:
  - name: any
    match: {host: api.example.com, prefix: /}
"""


def _config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        egress_routes=ROUTES,
        upstream_ca=trustme.CA().cert_pem.bytes(),
        clients={"backend": Credentials("backend", new_client_secret())},
        roles={},
    )


def run(*args: str) -> tuple[int, str, str]:
    _register()
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ca_prints_the_same_certificate_every_time(tmp_path: Path) -> None:
    config = _config(tmp_path)
    code, first, err = run("egress", "ca", "--config", str(config), "--actor", "cli:test")
    assert code == 0, err
    cert = x509.load_pem_x509_certificate(first.encode())
    assert cert.subject.rfc4514_string().startswith("O=tokengate,CN=tokengate egress relay CA")
    code, second, _ = run("egress", "ca", "--config", str(config))
    assert (code, second) == (0, first)
    assert "PRIVATE" not in first
    audit = "".join(p.read_text() for p in (tmp_path / "data" / "audit").glob("*.jsonl"))
    created = [json.loads(line) for line in audit.splitlines() if '"egress.ca_create"' in line]
    assert [e["fields"]["actor"] for e in created] == ["cli:test"]


def test_client_create_prints_a_secret_and_only_its_digest_for_the_config() -> None:
    code, out, err = run("egress", "client", "create", "--name", "billing", "--role", "payments")
    assert code == 0
    secret = out.strip()
    assert SECRET_RE.fullmatch(secret)
    assert secret not in err
    assert f"- {{name: billing, roles: [payments], sha256: {secret_digest(secret)}}}" in err


def test_client_create_refuses_a_bad_name() -> None:
    code, _, err = run("egress", "client", "create", "--name", "Bad Name")
    assert code == 2
    assert "use 1-64 of a-z 0-9" in err


def test_serve_refuses_a_relay_without_clients(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("upstreams: {app: {url: 'http://127.0.0.1:9'}}\n")
    code, _, err = run("egress", "serve", "--config", str(config))
    assert code == 2
    assert "egress.clients: no client may call the relay" in err


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _spawn(config: Path) -> tuple[subprocess.Popen[str], int]:
    """``tokengate egress serve`` on ``config``, once it listens; and its port."""
    port = int(config.read_text().split("listen: {host: 127.0.0.1, port: ")[1].split("}")[0])
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy.cli", "egress", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not _listening(port):
        if proc.poll() is not None:
            raise AssertionError(proc.communicate()[1])
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the relay did not listen: {proc.communicate()[1]}")
        time.sleep(0.05)
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then its stderr (killed if it does not exit)."""
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return err


def _audit(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in (tmp_path / "data" / "audit").glob("*.jsonl"))


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    proc, port = _spawn(_config(tmp_path))
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 407")
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    assert "egress relay listening on 127.0.0.1" in err
    audit = _audit(tmp_path)
    assert '"egress.start"' in audit
    assert '"egress.stop"' in audit


def test_serve_reloads_routes_on_sighup(tmp_path: Path) -> None:
    config = _config(tmp_path)
    proc, _ = _spawn(config)
    try:
        routes = tmp_path / "egress" / "routes.yaml"
        routes.write_text(
            ROUTES + "  - name: more\n    match: {host: api2.example.com, prefix: /}\n"
        )
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while '"egress.reload"' not in _audit(tmp_path):
            assert proc.poll() is None, "the relay exited on SIGHUP"
            assert time.monotonic() < deadline, "no reload was recorded"
            time.sleep(0.05)
    finally:
        err = _stop(proc)
    assert proc.returncode == 0, err
    assert "egress reloaded (SIGHUP): 2 routes, 1 clients" in err
    (entry,) = [json.loads(x) for x in _audit(tmp_path).splitlines() if '"egress.reload"' in x]
    assert entry["fields"] == {"result": "ok", "trigger": "SIGHUP", "routes": 2, "clients": 1}
