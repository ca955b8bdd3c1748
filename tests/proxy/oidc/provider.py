"""A real OpenID provider process for the relying-party tests.

``tests/fixtures/oidc-provider/server.mjs`` runs the OpenID Certified
``oidc-provider`` package on the machine's Node.js. Its node_modules are
installed from the committed package-lock.json with ``npm ci`` when missing
(under a file lock, so parallel xdist workers install once). Node and npm are
required: their absence fails the tests with a message saying what to install,
it never skips them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "oidc-provider"
MIN_NODE = (20, 19)
CLIENT_ID = "tokengate-test"
CLIENT_SECRET = "s3cret-for-tests-only-0123456789abcdef"
REDIRECT_PATH = "/.tokengate/oidc/callback"
USER = {
    "sub": "tg-test-user",
    "roles": ("admin", "auditor"),
    "tenant": "acme",
    "amr": ("pwd", "otp"),
    "acr": "urn:tokengate:test:loa2",
}


@dataclass
class Provider:
    """A running provider process and what the relying party needs to know about it."""

    issuer: str
    port: int
    origin: str  # the relying party's (fake) public origin; nothing listens there
    process: subprocess.Popen[bytes]
    log: Path
    ca_file: Path | None = None
    rotations: list[str] = field(default_factory=list)

    @property
    def redirect_uri(self) -> str:
        return self.origin + REDIRECT_PATH

    def rotate(self) -> str:
        """Make the provider sign with a new key (the old one stays published); its kid."""
        request = urllib.request.Request(self.issuer + "/__test/rotate", method="POST")
        with urllib.request.urlopen(request, timeout=10, context=self._ssl()) as resp:
            kid = str(json.loads(resp.read())["kid"])
        self.rotations.append(kid)
        return kid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def _ssl(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file))


def _require_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "oidc tests need Node.js >= 20.19 and npm on PATH (the OpenID provider "
            "fixture runs on them): install the nodejs and npm packages",
            pytrace=False,
        )
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    major, minor = (int(x) for x in out.strip().lstrip("v").split(".")[:2])
    if (major, minor) < MIN_NODE:
        pytest.fail(f"oidc tests need Node.js >= 20.19, found {out.strip()}", pytrace=False)
    return node, npm


def ensure_installed() -> str:
    """Node's path, after installing the fixture's node_modules with ``npm ci`` if missing."""
    node, npm = _require_node()
    marker = FIXTURE_DIR / "node_modules" / "oidc-provider" / "package.json"
    with open(FIXTURE_DIR / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=FIXTURE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci in {FIXTURE_DIR} failed:\n{done.stderr[-2000:]}")
    return node


def start_provider(
    log_dir: Path,
    *,
    alg: str = "RS256",
    client_auth: str = "client_secret_basic",
    tls: tuple[Path, Path, Path] | None = None,
) -> Provider:
    """Start ``server.mjs`` on a free port and wait until discovery answers."""
    node = ensure_installed()
    port = free_port()
    scheme = "https" if tls else "http"
    issuer = f"{scheme}://127.0.0.1:{port}"
    origin = f"https://gateway.test:{free_port()}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URI": origin + REDIRECT_PATH,
        "OIDC_CLIENT_AUTH": client_auth,
        "OIDC_SIGNING_ALG": alg,
    }
    ca_file = None
    if tls is not None:
        ca_file, cert, key = tls
        env["OIDC_TLS_CERT"], env["OIDC_TLS_KEY"] = str(cert), str(key)
    log = log_dir / f"oidc-provider-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [node, "server.mjs", str(port)],
            cwd=FIXTURE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    provider = Provider(issuer, port, origin, process, log, ca_file)
    _wait_ready(provider)
    return provider


def _wait_ready(provider: Provider) -> None:
    url = provider.issuer + "/.well-known/openid-configuration"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if provider.process.poll() is not None:
            pytest.fail(f"oidc provider exited:\n{provider.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=provider._ssl()) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    provider.stop()
    pytest.fail(f"oidc provider did not answer discovery:\n{provider.log.read_text()[-3000:]}")
