"""The gateway's own audit trail verifies end to end, with keyring-signed checkpoints."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Launcher
from tests.integration.process import TOKENGATE, wait_ready
from tests.proxy.conftest import Backend

pytestmark = pytest.mark.slow


def verify(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TOKENGATE, "audit", "verify", str(data / "audit")],
        capture_output=True,
        text=True,
        check=False,
    )


async def test_gateway_audit_trail_verifies_and_detects_an_edit(
    backend: Backend, launch: Launcher, tmp_path: Path
) -> None:
    gw = launch(backend.url, workers=2, extra="audit: {checkpoint_every: 2}\n")
    await wait_ready(gw, workers=2)
    gw.signal(signal.SIGHUP)
    await asyncio.sleep(1.0)
    assert gw.stop() == 0
    data = tmp_path / "data"
    events = [
        json.loads(line)["event"]
        for f in (data / "audit").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert events.count("gateway.start") == 2
    assert events.count("policy.reload") == 2
    assert "keyring.unseal" in events
    result = verify(data)
    assert result.returncode == 0, result.stdout + result.stderr
    # Checkpoints are signed by the keyring's audit-checkpoint key, published in the JWKS.
    jwks = json.loads((data / "keys" / "audit-checkpoint.jwks.json").read_text())
    assert len(jwks["keys"]) >= 2  # keyring key + the fallback key
    log = next(p for p in (data / "audit").glob("*.jsonl") if '"gateway.start"' in p.read_text())
    lines = log.read_text().splitlines()
    edited = next(i for i, line in enumerate(lines) if '"gateway.start"' in line)
    lines[edited] = lines[edited].replace('"development"', '"production"')
    log.write_text("\n".join(lines) + "\n")
    result = verify(data)
    assert result.returncode == 1
    assert log.name in result.stdout + result.stderr
