"""The TEE flow end to end: a real KMS, two sim workers and a gateway, each in its own process.

Card numbers go through the gateway's ``tee`` action: checked by the demo
bundle's ``card_check`` in an attested worker, then tokenized (``/cards``), or
replaced by the job's verdict (``/verdicts``). What is proven here:
- jobs are balanced over both workers, and each job's key is released by the
  KMS to the worker that ran it;
- the backend never sees a card number, and no file any process wrote
  (audit logs, logs, databases, configs) holds one;
- the KMS trusts no gateway: a grant for a worker key it has not attested
  itself is refused; replayed evidence (an old nonce) is refused; a retired
  TEE is refused, and the gateway evicts it at re-attestation;
- a worker restarted with a changed bundle is refused by the KMS (it gets no
  key) and the gateway stops sending it jobs;
- with no attested worker left the gateway answers 503 with a JSON error and
  reports not ready.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tee.errors import KeyBrokerRefused
from tee.wire import b64d, b64e
from tee.worker_client import WorkerClient
from tests.e2e.tee_lab import TeeLab, changed_bundle, wait_for

pytestmark = pytest.mark.slow


def card() -> str:
    """A fresh Luhn-valid 16-digit Visa number nobody else uses."""
    body = "4" + "".join(str(secrets.randbelow(10)) for _ in range(14))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def broken(number: str) -> str:
    """The same number with its check digit wrong."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[TeeLab]:
    lab = TeeLab(tmp_path)
    try:
        await lab.backend.start()
        await lab.start_kms()
        for tee_id in ("tee-1", "tee-2"):
            await lab.register(tee_id)
            await lab.start_worker(tee_id)
        await lab.start_gateway(["tee-1", "tee-2"])
        yield lab
    finally:
        await lab.stop()


async def post(s: aiohttp.ClientSession, lab: TeeLab, path: str, number: str) -> tuple[int, Any]:
    assert lab.gateway is not None
    async with s.post(f"{lab.gateway.url}{path}", json={"card": number}) as r:
        return r.status, await r.json()


async def readiness(s: aiohttp.ClientSession, lab: TeeLab) -> dict[str, Any]:
    assert lab.gateway is not None
    async with s.get(f"{lab.gateway.admin}/.tokengate/readyz") as r:
        body: dict[str, Any] = await r.json()
        return body


def assert_nowhere(lab: TeeLab, numbers: list[str]) -> None:
    """Neither the backend nor any file under the lab holds any of ``numbers``."""
    for number in numbers:
        raw = number.encode()
        assert not any(raw in body for body in lab.backend.bodies), "the backend saw a card"
        for path in lab.every_file():
            assert raw not in path.read_bytes(), f"{path} holds a card number"


async def test_jobs_are_balanced_and_no_card_reaches_the_backend_or_a_file(lab: TeeLab) -> None:
    cards = [card() for _ in range(8)]
    async with aiohttp.ClientSession() as s:
        for number in cards:
            status, body = await post(s, lab, "/cards", number)
            assert status == 200, body
            token = body["received"]["card"]
            assert token != number
            assert token[-4:] == number[-4:]  # pan tokens keep the last four
        refused = broken(card())
        status, body = await post(s, lab, "/cards", refused)
        assert status == 400
        assert body["error"] == "bad_field"
        verdict_card = card()
        status, body = await post(s, lab, "/verdicts", verdict_card)
        assert status == 200
        verdict = json.loads(body["received"]["card"])
        assert verdict["valid"] is True
        assert verdict["brand"] == "visa"
        ready = await readiness(s, lab)
        assert ready["checks"]["tee"] == "ok"
        assert lab.gateway is not None
        async with s.get(f"{lab.gateway.admin}/.tokengate/metrics") as r:
            metrics = await r.text()
        assert "tokengate_tee_workers_attested 2.0" in metrics
    released = lab.released_to()
    assert len(released) == 10  # one job per message, each key released once
    assert released.count("tee-1") >= 3
    assert released.count("tee-2") >= 3
    grants = lab.audit("kms", "kms.grant")
    assert {(g["job"], g["tenant"]) for g in grants} == {("card_check", "acme")}
    admitted = lab.audit("gateway", "tee.attest")
    assert {a["tee_id"] for a in admitted if a["result"] == "admitted"} == {"tee-1", "tee-2"}
    await lab.stop()  # every log and database flushed and closed before the search
    assert_nowhere(lab, [*cards, refused, verdict_card])


async def test_the_kms_trusts_no_gateway_replayed_evidence_or_retired_tee(lab: TeeLab) -> None:
    gateway = lab.kms_client(lab.gateway_credential)
    try:
        with pytest.raises(KeyBrokerRefused) as caught:
            await gateway.grant(
                tee_id="tee-1",
                worker_key=secrets.token_bytes(32),  # a key the KMS never attested
                job="card_check",
                tenant="acme",
                request_id="r-1",
            )
        assert (caught.value.status, caught.value.code) == (403, "unattested")
    finally:
        await gateway.close()

    async with aiohttp.ClientSession() as s:

        async def broker(path: str, body: dict[str, object]) -> tuple[int, dict[str, Any]]:
            async with s.post(f"{lab.kms_url}/v1/broker/{path}", json=body) as r:
                return r.status, await r.json()

        status, challenge = await broker("challenge", {"tee_id": "tee-1"})
        assert status == 200
        async with WorkerClient(f"unix:{lab.socket('tee-1')}") as worker:
            evidence = await worker.attest(b64d(challenge["nonce"]))
        attest = {
            "tee_id": "tee-1",
            "nonce": challenge["nonce"],
            "public_key": b64e(evidence.public_key),
            "evidence": b64e(evidence.evidence),
        }
        status, _ = await broker("attest", attest)
        assert status == 200  # genuine evidence for the KMS's own nonce
        status, body = await broker("attest", attest)  # the same evidence again
        assert (status, body["error"]) == (403, "attestation_refused")
        status, fresh = await broker("challenge", {"tee_id": "tee-1"})
        status, body = await broker("attest", {**attest, "nonce": fresh["nonce"]})
        assert (status, body["error"]) == (403, "attestation_refused")  # bound to the old nonce

        await lab.retire("tee-2")
        status, body = await broker("challenge", {"tee_id": "tee-2"})
        assert (status, body["error"]) == (403, "retired")
        await wait_for(
            lambda: any(e["tee_id"] == "tee-2" for e in lab.audit("gateway", "tee.evict")),
            "the gateway to evict the retired TEE",
        )
        [evicted] = [e for e in lab.audit("gateway", "tee.evict") if e["tee_id"] == "tee-2"]
        assert evicted["check"] in ("retired", "refused")
        before = len(lab.released_to())
        for number in [card() for _ in range(4)]:
            status, body = await post(s, lab, "/cards", number)
            assert status == 200, body
        assert lab.released_to()[before:] == ["tee-1"] * 4


async def test_a_changed_bundle_gets_no_key_and_no_worker_left_is_503(lab: TeeLab) -> None:
    lab.stop_worker("tee-2")
    await lab.start_worker("tee-2", changed_bundle(lab.root))
    grants_before = len([g for g in lab.audit("kms", "kms.grant") if g["tee_id"] == "tee-2"])
    # The gateway's re-attestation makes the worker attest its new key to the KMS,
    # which compares the changed measurement with the registry and refuses it.
    await wait_for(
        lambda: any(
            a["tee_id"] == "tee-2" and a["outcome"] == "refused" and a["check"] == "measurement"
            for a in lab.audit("kms", "kms.attest")
        ),
        "the KMS to refuse the changed bundle",
    )
    await wait_for(
        lambda: any(e["tee_id"] == "tee-2" for e in lab.audit("gateway", "tee.evict")),
        "the gateway to evict the changed worker",
    )
    cards = [card() for _ in range(4)]
    async with aiohttp.ClientSession() as s:
        released = len(lab.released_to())
        for number in cards:
            status, body = await post(s, lab, "/cards", number)
            assert status == 200, body
        assert lab.released_to()[released:] == ["tee-1"] * 4
        grants_after = [g for g in lab.audit("kms", "kms.grant") if g["tee_id"] == "tee-2"]
        assert len(grants_after) == grants_before  # the changed worker got no key

        lab.stop_worker("tee-1")
        lab.stop_worker("tee-2")
        for number in [card(), card()]:  # found unreachable, then none left
            cards.append(number)
            assert lab.gateway is not None
            async with s.post(f"{lab.gateway.url}/cards", json={"card": number}) as r:
                assert r.status == 503
                assert r.content_type == "application/json"
                body = await r.json()
            assert body["error"] == "tee_unavailable"
            assert set(body) == {"error", "message", "request_id"}
        ready = await readiness(s, lab)
        assert ready["status"] == "not_ready"
        assert ready["checks"]["tee"] == "failed"
    await lab.stop()
    assert_nowhere(lab, cards)
