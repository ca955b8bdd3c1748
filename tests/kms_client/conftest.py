"""Fixtures for kms_client tests: a private SoftHSM2 and a private moto KMS server.

SoftHSM2 reads ``SOFTHSM2_CONF`` once, when the module is first loaded in a
process, and only sees tokens that exist at that moment. So ``softhsm`` is
session-scoped (one per xdist worker process): it writes a config pointing at
a tokens directory under the worker's tmp dir, initialises every token the
tests need, and only then may a test load the module. Tests isolate from
each other by unique root key labels inside those tokens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SOFTHSM_PIN = "4321-test-user"
SOFTHSM_SO_PIN = "8765-test-so"
# main: most tests; other: a second token for cross-root tests; lockable: wrong-PIN tests.
SOFTHSM_TOKENS = ("tg-main", "tg-other", "tg-lockable")


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 set up for this worker process: module path, user PIN, token labels."""

    module: str
    conf: Path
    pin: str
    tokens: tuple[str, ...]

    def uri(
        self,
        *,
        token: str = "tg-main",
        key: str,
        pin_env: str = "TG_TEST_HSM_PIN",
        mechanism: str = "aes-gcm",
    ) -> str:
        """A ``pkcs11:`` URI for root key ``key`` in ``token``."""
        return (
            f"pkcs11:token={token};object={key}"
            f"?module-path={self.module}&pin-env={pin_env}&mechanism={mechanism}"
        )


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """Private SoftHSM2 tokens for this worker; sets SOFTHSM2_CONF before any module load."""
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    util = shutil.which("softhsm2-util") or "/usr/bin/softhsm2-util"
    for label in SOFTHSM_TOKENS:
        pins = ["--pin", SOFTHSM_PIN, "--so-pin", SOFTHSM_SO_PIN]
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, *pins],
            check=True,
            env=env,
            capture_output=True,
        )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield SoftHsm(module=SOFTHSM_MODULE, conf=conf, pin=SOFTHSM_PIN, tokens=SOFTHSM_TOKENS)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


@dataclass(frozen=True)
class MotoServer:
    """A running moto server: its endpoint URL and region."""

    endpoint: str
    region: str = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A private ``moto_server`` on 127.0.0.1 for this worker, stopped at the end."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(endpoint, proc)
        yield MotoServer(endpoint=endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(endpoint: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError("moto_server did not answer within 30s")


@pytest.fixture
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials for this test only; no profile or instance metadata lookups."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
