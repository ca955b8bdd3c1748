"""proxy.cli.attest_deploy: deployment verdicts as printed, and a KMS or worker that never answers.

The whole check against a real KMS and real sim workers is
tests/proxy/cli/test_attest_targets.py; here the report shapes and the
deadline, with the real clients against sockets that accept and stay silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.cli.attest_deploy import Deployment, DeploymentVerdict, check_deployment, summary
from tee.admission import Verification
from tee.attestation import Claims, Platform
from tee.broker_client import BrokerClient
from tee.errors import EvidenceRefused
from tee.report import Verdict
from tee.worker_client import WorkerClient

AT = datetime(2026, 1, 1, tzinfo=UTC)
D = Deployment("tee-1", "unix:/run/w.sock")


def claims() -> Claims:
    return Claims(
        platform=Platform.SIM,
        measurements={"measurement": "ab" * 48},
        report_data=b"",
        public_key=b"\x01" * 32,
        nonce=b"\x02" * 32,
        tcb_status="UpToDate",
        debug=False,
    )


def test_a_verified_deployment() -> None:
    verdict = Verdict(Platform.SIM, AT, claims=claims(), source=D.label)
    result = DeploymentVerdict(D, verdict, generation=3)
    assert result.verified
    assert result.check is None
    doc = result.as_dict()
    assert (doc["deployment"], doc["address"], doc["generation"]) == ("tee-1", D.address, 3)
    assert (doc["verdict"], doc["platform"], doc["source"]) == ("verified", "sim", D.label)
    text = result.text()
    assert text.startswith(f"{D.label}: VERIFIED")
    assert "  worker key    generation 3" in text


def test_a_refusal_before_the_registry_named_a_platform() -> None:
    result = DeploymentVerdict(D, failed=EvidenceRefused("registry", "no such TEE"))
    assert not result.verified
    assert result.check == "registry"
    assert result.as_dict() == {
        "deployment": "tee-1",
        "address": D.address,
        "generation": None,
        "source": D.label,
        "platform": None,
        "verdict": "refused",
        "failed_check": "registry",
        "reason": "no such TEE",
    }
    assert result.text().splitlines() == [
        f"{D.label}: REFUSED",
        "  platform      unknown (the registry entry was not read)",
        "  failed check  registry: no such TEE",
    ]


def test_a_refused_verdict_names_its_check() -> None:
    refused = Verdict(Platform.SIM, AT, refused=EvidenceRefused("measurement", "x"))
    result = DeploymentVerdict(D, refused, generation=None)
    assert (result.verified, result.check) == (False, "measurement")
    assert "generation" not in result.text()


def test_summary() -> None:
    ok = DeploymentVerdict(D, Verdict(Platform.SIM, AT, claims=claims()))
    bad = DeploymentVerdict(Deployment("tee-2", "h:1"), failed=EvidenceRefused("timeout", "t"))
    assert summary([ok, ok]) == "attest: 2 deployments: 2 verified, 0 refused"
    assert summary([ok, bad]) == "attest: 2 deployments: 1 verified, 1 refused: tee-2 (timeout)"


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """A loopback TCP server that accepts connections and never answers: its HOST:PORT."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_a_silent_kms_is_a_timeout_without_a_platform(silent: str, tmp_path: Path) -> None:
    registry = BrokerClient(f"http://{silent}", credential="x", timeout=60)
    worker = WorkerClient(f"unix:{tmp_path / 'none.sock'}")
    try:
        result = await check_deployment(
            D, worker, registry, verification=Verification(), attest_timeout=0.3
        )
    finally:
        await registry.close()
        await worker.close()
    assert result.failed is not None
    assert (result.check, result.verdict) == ("timeout", None)


async def test_an_unreachable_kms_is_a_registry_refusal(tmp_path: Path) -> None:
    registry = BrokerClient("http://127.0.0.1:1", credential="x", timeout=5)
    worker = WorkerClient(f"unix:{tmp_path / 'none.sock'}")
    try:
        result = await check_deployment(D, worker, registry, verification=Verification())
    finally:
        await registry.close()
        await worker.close()
    assert result.check == "registry"
    assert result.failed is not None
    assert result.failed.detail == "the KMS registry cannot answer (kms_unavailable)"
