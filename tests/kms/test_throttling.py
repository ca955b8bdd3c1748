"""kms.throttling: the per-peer limit of the unauthenticated broker routes, on the real service.

The KMS runs for real (open_service on a free port) with a limit no test can
refill (0.001 calls per second); a second peer is a client bound to another
loopback address (127.0.0.2: Linux routes all of 127/8 to lo).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kms.service_support import Kms, running_kms

BURST = 3
LIMITS = {"unauthenticated_rate": 0.001, "burst": BURST}


@pytest.fixture
async def kms(tmp_path: Path) -> AsyncIterator[Kms]:
    async with running_kms(tmp_path, broker=LIMITS) as k:
        assert (await k.register()).status == 201
        yield k


async def _challenge(kms: Kms, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    async with kms.session.post(
        kms.url + "/v1/broker/challenge", data=json.dumps({"tee_id": "w1"}), headers=headers
    ) as resp:
        await resp.read()
        return resp


def _events(data_dir: Path, event: str) -> list[dict[str, Any]]:
    text = "".join(p.read_text() for p in sorted((data_dir / "audit").glob("*.jsonl")))
    return [e for e in map(json.loads, text.splitlines()) if e.get("event") == event]


async def test_a_burst_past_the_limit_gets_429_and_one_aggregated_entry(tmp_path: Path) -> None:
    async with running_kms(tmp_path, broker=LIMITS) as kms:
        assert (await kms.register()).status == 201
        statuses = [(await _challenge(kms)).status for _ in range(BURST)]
        assert statuses == [200] * BURST
        refused = [await _challenge(kms) for _ in range(20)]
        assert {r.status for r in refused} == {429}
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        reply = await kms.call("POST", "/v1/broker/attest", {"tee_id": "w1"})
        assert (reply.status, reply.body["error"]) == (429, "too_many_requests")
        throttled = [e["fields"] for e in kms.audit_events("kms.throttled")]
        assert throttled == [{"peer": "127.0.0.1", "count": 1}]  # not one per refusal
        assert kms.audit_events("kms.refuse") == []
    # the rest is written once, at shutdown at the latest
    counts = [e["fields"]["count"] for e in _events(kms.data_dir, "kms.throttled")]
    assert counts == [1, 20]


async def test_forwarded_headers_do_not_make_a_new_peer(kms: Kms) -> None:
    for i in range(BURST):
        await _challenge(kms, {"X-Forwarded-For": f"203.0.113.{i}"})
    spoofed = await _challenge(kms, {"X-Forwarded-For": "203.0.113.99", "X-Real-IP": "1.2.3.4"})
    assert spoofed.status == 429


async def test_another_peer_is_unaffected(kms: Kms) -> None:
    for _ in range(BURST):
        await _challenge(kms)
    assert (await _challenge(kms)).status == 429
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        async with other.post(
            kms.url + "/v1/broker/challenge", data=json.dumps({"tee_id": "w1"})
        ) as resp:
            assert resp.status == 200


async def test_authenticated_routes_and_probes_are_not_throttled(kms: Kms) -> None:
    for _ in range(BURST + 1):
        await _challenge(kms)
    assert (await _challenge(kms)).status == 429
    for _ in range(BURST * 3):
        assert (await kms.call("GET", "/v1/tees", token=kms.admin)).status == 200
        assert (await kms.call("GET", "/healthz")).status == 200
    release = await kms.call("POST", "/v1/broker/release", {}, token="tgs_nothing")
    assert release.status != 429
