"""A real `tokengate tee worker` against a real `tokengate kms serve`: the worker's release path.

The gateway's side is played by the test with the KMS's gateway credential
(grants, revoke) and the pool's worker client. What is proven here, beyond
tests/e2e/test_tee_flow.py:
- a job's key is released once: the same envelope sent again is answered
  `release_refused`, sealed to R (and audited by the KMS as a refusal);
- an envelope whose binding differs from its grant gets no key;
- after the gateway revokes a worker key, its pending grant gets no key,
  while the worker's own fresh attestation lets new grants through (the KMS
  re-verifies its evidence: revocation is not a way around attestation);
- a key replaced by re-attestation still opens in-flight envelopes (grace),
  and each generation's key is released only to that key.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tee.envelope import Binding, open_response, seal
from tee.errors import JobRefused
from tee.worker_client import AttestResult, WorkerClient
from tests.e2e.tee_lab import TeeLab

pytestmark = pytest.mark.slow

TEE = "tee-w"


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[TeeLab]:
    lab = TeeLab(tmp_path)
    try:
        await lab.start_kms()
        await lab.register(TEE)
        await lab.start_worker(TEE)
        yield lab
    finally:
        await lab.stop()


async def _grant(lab: TeeLab, key: bytes, request_id: str) -> tuple[Binding, bytes]:
    gateway = lab.kms_client(lab.gateway_credential)
    try:
        granted = await gateway.grant(
            tee_id=TEE, worker_key=key, job="card_check", tenant="acme", request_id=request_id
        )
    finally:
        await gateway.close()
    binding = Binding(
        TEE, key, "card_check", "acme", request_id, granted.grant_id, granted.expires_at
    )
    return binding, granted.key


async def _attest(client: WorkerClient) -> AttestResult:
    return await client.attest(os.urandom(32))


async def test_a_key_is_released_once(lab: TeeLab) -> None:
    async with WorkerClient(f"unix:{lab.socket(TEE)}") as client:
        key = (await _attest(client)).public_key
        binding, k2 = await _grant(lab, key, "req-1")
        sealed = seal(binding, k2, ["4111111111111111"])
        answer = await client.run_job("card_check", sealed.envelope)
        [verdict] = open_response(binding, sealed.response_key, answer)
        assert '"valid":true' in verdict
        again = await client.run_job("card_check", sealed.envelope)
        with pytest.raises(JobRefused) as e:
            open_response(binding, sealed.response_key, again)
        assert e.value.code == "release_refused"
    assert lab.released_to() == [TEE]
    refusals = lab.audit("kms", "kms.refuse")
    assert any(r.get("grant_id") == binding.grant_id for r in refusals)


async def test_an_envelope_unlike_its_grant_gets_no_key(lab: TeeLab) -> None:
    async with WorkerClient(f"unix:{lab.socket(TEE)}") as client:
        key = (await _attest(client)).public_key
        binding, k2 = await _grant(lab, key, "req-1")
        forged = Binding(
            TEE, key, "card_check", "acme", "req-other", binding.grant_id, binding.expires_at
        )
        sealed = seal(forged, k2, ["4111111111111111"])
        with pytest.raises(JobRefused) as e:
            open_response(
                forged, sealed.response_key, await client.run_job("card_check", sealed.envelope)
            )
        assert e.value.code == "release_refused"
    assert lab.released_to() == []


async def test_revoked_grants_get_no_key_and_fresh_attestation_is_needed(lab: TeeLab) -> None:
    async with WorkerClient(f"unix:{lab.socket(TEE)}") as client:
        key = (await _attest(client)).public_key
        binding, k2 = await _grant(lab, key, "req-1")
        gateway = lab.kms_client(lab.gateway_credential)
        try:
            revoked = await gateway.revoke(TEE, key)
        finally:
            await gateway.close()
        assert (revoked.sessions, revoked.grants) == (1, 1)
        sealed = seal(binding, k2, ["4111111111111111"])
        with pytest.raises(JobRefused) as e:
            open_response(
                binding, sealed.response_key, await client.run_job("card_check", sealed.envelope)
            )
        assert e.value.code == "release_refused"
        # The worker renewed its session with fresh evidence on that 401: new grants work.
        binding, k2 = await _grant(lab, key, "req-2")
        sealed = seal(binding, k2, ["4111111111111111"])
        answer = await client.run_job("card_check", sealed.envelope)
        assert len(open_response(binding, sealed.response_key, answer)) == 1
    assert len(lab.audit("kms", "kms.attest")) == 2  # /v1/attest, then the renewal after the 401


async def test_a_replaced_key_still_opens_in_flight_envelopes(lab: TeeLab) -> None:
    async with WorkerClient(f"unix:{lab.socket(TEE)}") as client:
        first = await _attest(client)
        old_binding, old_k2 = await _grant(lab, first.public_key, "req-old")
        second = await _attest(client)
        assert second.generation == first.generation + 1
        new_binding, new_k2 = await _grant(lab, second.public_key, "req-new")
        for binding, k2 in ((old_binding, old_k2), (new_binding, new_k2)):
            sealed = seal(binding, k2, ["378282246310005"])
            answer = await client.run_job("card_check", sealed.envelope)
            [verdict] = open_response(binding, sealed.response_key, answer)
            assert '"brand":"amex"' in verdict
    assert lab.released_to() == [TEE, TEE]
