"""``tokengate tee worker|measure``: a real worker process, driven by the pool's client.

The KMS side is the test double of tests/tee/worker/kms_double.py on a real
port (the real `tokengate kms serve` is covered by the integration test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from proxy.cli import _register, cli
from tee.bundle import measure
from tee.envelope import open_response, seal
from tee.errors import WorkerRefusal
from tee.sim import load_or_create_key
from tee.worker_client import WorkerClient
from tests.tee.worker.harness import write_bundle
from tests.tee.worker.kms_double import KmsDouble

_register()
ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "tee_jobs"


def test_measure_prints_the_registry_value() -> None:
    result = CliRunner().invoke(cli, ["tee", "measure", "--bundle", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == measure(EXAMPLE).hex()


def test_measure_refuses_a_bundle_with_a_symlink(tmp_path: Path) -> None:
    write_bundle(tmp_path / "b")
    (tmp_path / "b" / "l.py").symlink_to(tmp_path / "b" / "__init__.py")
    result = CliRunner().invoke(cli, ["tee", "measure", "--bundle", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "symbolic link" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--insecure-simulated-tee"),
        (["--insecure-simulated-tee", "--kms", "http://kms.example"], "plain http"),
        (["--insecure-simulated-tee", "--listen", "nowhere"], "not unix:/path"),
        (["--insecure-simulated-tee", "--kms-cert", __file__], "--kms-key go together"),
        (["--insecure-simulated-tee", "--kms-key", __file__], "--kms-key go together"),
    ],
    ids=["no-sim-flag", "plain-http-kms", "bad-listen", "cert-without-key", "key-without-cert"],
)
def test_worker_refuses_to_start(tmp_path: Path, extra: list[str], message: str) -> None:
    # (--kms-cert/--kms-key with real files against a KMS requiring mTLS: tests/tee/worker/test_kbs.py)
    args = ["tee", "worker", "--bundle", str(EXAMPLE), "--tee-id", "t", "--data-dir", str(tmp_path)]
    defaults = {"--listen": f"unix:{tmp_path / 's'}", "--kms": "http://127.0.0.1:1"}
    for flag, value in defaults.items():
        if flag not in extra:
            args += [flag, value]
    result = CliRunner().invoke(cli, args + extra)
    assert result.exit_code == 2
    assert message in result.output


async def test_a_worker_process_serves_the_example_bundle(tmp_path: Path) -> None:
    data_dir, sock = tmp_path / "data", tmp_path / "w.sock"
    sim = load_or_create_key(data_dir)  # the worker finds and uses this development key
    kms = KmsDouble(sim.public_key(), measure(EXAMPLE).hex())
    kms_server = TestServer(kms.app(), host="127.0.0.1")
    await kms_server.start_server()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "tee", "worker",
        "--bundle", str(EXAMPLE), "--tee-id", "tee-1", "--listen", f"unix:{sock}",
        "--kms", str(kms_server.make_url("/")), "--data-dir", str(data_dir),
        "--insecure-simulated-tee",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"listening on unix:{sock}" in line
        assert f"measurement {measure(EXAMPLE).hex()}" in line
        assert "jobs card_check, ssn_check" in line
        async with WorkerClient(f"unix:{sock}") as client:
            answer = await client.attest(os.urandom(32))
            grant = kms.grant(worker_key=answer.public_key, job="card_check")
            sealed = seal(grant.binding, grant.key, ["4111 1111 1111 1111", "1234"])
            response = await client.run_job("card_check", sealed.envelope)
            verdicts = open_response(grant.binding, sealed.response_key, response)
            assert verdicts == [
                '{"bin":"411111","brand":"visa","length":16,"luhn":true,"valid":true}',
                '{"bin":null,"brand":null,"length":0,"luhn":false,"valid":false}',
            ]
            kms.measurement = "00" * 48  # the registry no longer lists this bundle
            with pytest.raises(WorkerRefusal) as e:
                await client.attest(os.urandom(32))
            assert e.value.code == "kms_refused"
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert b"stopped" in out
        assert b"WARNING: simulated TEE" in err
        assert b"4111" not in out + err
        assert not sock.exists()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await kms_server.close()
