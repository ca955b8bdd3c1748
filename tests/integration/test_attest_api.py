"""POST /.tokengate/admin/v1/attestation/verify on a real gateway process.

The worker wires the route on its admin listener: a real AWS Nitro document
verifies at a time inside its window and the verdict is in the gateway's
audit log; simulated evidence is refused while the config has no ``tee:``
section allowing it; no key, no verdict.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from proxy.adminapi.keys import key_digest, new_api_key
from tee.sim import SimReport, load_or_create_key, sign_evidence
from tests.integration.conftest import Launcher
from tests.integration.process import wait_ready
from tests.proxy.conftest import Backend

pytestmark = pytest.mark.slow

NITRO = Path(__file__).resolve().parents[1] / "tee" / "vectors" / "nitro"
PATH = "/.tokengate/admin/v1/attestation/verify"


async def test_a_real_gateway_verifies_and_audits(
    backend: Backend, launch: Launcher, tmp_path: Path
) -> None:
    key = new_api_key()
    api = f", api: {{keys: [{{name: aud, role: auditor, sha256: {key_digest(key)}}}]}}"
    gw = launch(backend.url, admin_extra=api)
    await wait_ready(gw)
    doc = (NITRO / "evervault_beta_2022-10-13.cose").read_bytes()
    body = {
        "platform": "nitro",
        "evidence": base64.b64encode(doc).decode(),
        "at": "2022-10-13T10:00:00Z",
    }
    sim = sign_evidence(
        load_or_create_key(tmp_path / "dev"), SimReport(b"\x01" * 48), now=datetime.now(UTC)
    )
    sim_body = {"platform": "sim", "evidence": base64.b64encode(sim).decode()}
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.admin}{PATH}", json=body, headers=auth) as r:
            assert r.status == 200, await r.text()
            verdict = await r.json()
        async with s.post(f"{gw.admin}{PATH}", json=sim_body, headers=auth) as r:
            assert r.status == 200, await r.text()
            sim_verdict = await r.json()
        async with s.post(f"{gw.admin}{PATH}", json=body) as r:
            assert r.status == 401
    assert verdict["verdict"] == "verified"
    assert verdict["measurements"]["pcr0"].startswith("f4d48b81")
    assert (sim_verdict["verdict"], sim_verdict["failed_check"]) == ("refused", "platform")
    gw.stop()
    entries = [
        json.loads(line)
        for f in (gw.config.parent / "data" / "audit").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    verified = [e["fields"] for e in entries if e["event"] == "attest.verify"]
    assert [(v["platform"], v["verdict"]) for v in verified] == [
        ("nitro", "verified"),
        ("sim", "refused"),
    ]
    assert verified[0]["evidence_sha256"] == verdict["evidence_sha256"]
    assert verified[0]["actor"] == "apikey:aud"
    assert body["evidence"] not in json.dumps(entries)
