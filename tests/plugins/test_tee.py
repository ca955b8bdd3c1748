"""The ``tee`` action: one job per batch through the pool, checks, replacement, tokenization, fail closed.

The pool, the job runner and the envelopes are real; the workers and the KMS
are in-process doubles that keep the protocol's cryptography
(tests/tee/pool_support.py). The end-to-end test runs the real processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest

from plugins.base import ActionContext, FieldResult, Outcome
from plugins.registry import create_action
from plugins.tee import Tee
from tee.errors import TeeError
from tee.jobs import JobFailed, JobRunner
from tee.pool import Schedule, TeePool, WorkerSpec
from tests.plugins.support import SSN, Env, run, values
from tests.tee.pool_support import CHANGED, Lab, SimWorker, seen

CARDS = ["4111111111111111", "4012888888881881", "5555555555554444"]


@dataclass
class Rig:
    """A started pool of two sim workers, its runner and a context factory."""

    lab: Lab
    pool: TeePool[SimWorker]
    env: Env

    def ctx(self, **changes: object) -> ActionContext:
        runner = JobRunner(self.pool, self.lab.kms, grant_ttl=30, timeout=5)  # type: ignore[arg-type]
        base = replace(self.env.ctx(direction="request", rule="request[0]"), tee=runner)
        return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def rig(env: Env) -> AsyncIterator[Rig]:
    lab = Lab.build()
    workers = [(WorkerSpec("tee-a", f"127.0.0.1:{9100 + i}"), w) for i, w in enumerate(lab.workers)]
    pool = TeePool(
        workers,
        registry=lab.kms,
        audit=lab.audit,
        verification=lab.verification(),
        schedule=Schedule(reattest_every=60, retry_every=5),
    )
    await pool.refresh(everyone=True)
    yield Rig(lab, pool, env)
    await pool.close()


def tee(**options: object) -> Tee:
    action = create_action("tee", options)
    assert isinstance(action, Tee)
    return action


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "tee: option 'job': Field required"),
        ({"job": "bad job"}, "tee: option 'job': String should match pattern"),
        ({"job": "luhn", "accept": []}, "tee: option 'accept"),
        ({"job": "luhn", "accept": "ok"}, "tee: option 'accept"),
        ({"job": "luhn", "class": "ssn"}, "tee: option 'class': must name a field class"),
        ({"job": "luhn", "then": "tokenize"}, "tee: option 'then': Extra inputs"),
    ],
    ids=["no-job", "bad-job", "empty-accept", "accept-string", "class-name", "unknown-option"],
)
def test_bad_options_are_refused_at_load(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        create_action("tee", options)


async def test_a_batch_is_one_job_and_the_result_replaces_the_value(rig: Rig) -> None:
    out = await run(tee(job="upper"), rig.ctx(), "abc", "def", "ghi")
    assert [r.value for r in out] == ["ABC", "DEF", "GHI"]
    assert len(rig.lab.kms.granted) == 1  # one grant, one worker call for the whole batch
    assert seen(rig.lab.workers) == ["abc", "def", "ghi"]


async def test_jobs_are_balanced_over_the_attested_workers(rig: Rig) -> None:
    for _ in range(6):
        await run(tee(job="upper"), rig.ctx(), "x")
    assert [len(w.seen) for w in rig.lab.workers] == [3, 3]


async def test_a_check_keeps_accepted_values_and_refuses_the_others(rig: Rig) -> None:
    out = await run(tee(job="luhn", accept=["ok"]), rig.ctx(), CARDS[0], "4111111111111112")
    assert out[0] == FieldResult.replace(CARDS[0])
    assert out[1].outcome is Outcome.INVALID
    assert out[1].reason == "refused by its tee job"


async def test_a_json_verdict_is_matched_by_a_mapping(rig: Rig) -> None:
    action = tee(job="brand", accept={"valid": True})
    out = await run(action, rig.ctx(), CARDS[0], CARDS[2])
    assert out[0].outcome is Outcome.REPLACE
    assert out[1].outcome is Outcome.INVALID
    strict = tee(job="brand", accept={"valid": 1})  # true is not 1
    assert (await run(strict, rig.ctx(), CARDS[0]))[0].outcome is Outcome.INVALID


async def test_checked_values_are_tokenized_in_the_same_rule(rig: Rig) -> None:
    action = tee(job="fine", accept=["ok"], **{"class": SSN})
    out = await run(action, rig.ctx(), "078-05-1120", "219099999")
    tokens = [r.value for r in out]
    assert all(r.outcome is Outcome.REPLACE for r in out)
    assert all(isinstance(t, str) and t not in ("078-05-1120", "219099999") for t in tokens)
    plain = await run(create_action("detokenize", {"class": SSN, "allow": {"owner": True}}),
                      rig.ctx(direction="response"), *tokens)  # fmt: skip
    assert [r.value for r in plain] == ["078-05-1120", "219099999"]


async def test_empty_and_non_text_values_do_not_go_to_the_tee(rig: Rig) -> None:
    out = await run(tee(job="upper"), rig.ctx(), None, "", 1.5, True, 4242, "a")
    assert [r.outcome for r in out] == ["replace", "replace", "invalid", "invalid", "replace", "replace"]  # fmt: skip
    assert [out[0].value, out[1].value, out[4].value, out[5].value] == [None, "", "4242", "A"]
    assert seen(rig.lab.workers) == ["4242", "a"]
    nothing = await run(tee(job="upper"), rig.ctx(), None, "")
    assert [r.value for r in nothing] == [None, ""]
    assert len(rig.lab.kms.granted) == 1


async def test_no_attested_worker_fails_closed(rig: Rig) -> None:
    for m in rig.pool.members():
        await rig.pool.evict(m, "unreachable", "test")
    with pytest.raises(JobFailed) as caught:
        await tee(job="upper").apply(values("secret-value"), rig.ctx())
    assert caught.value.status == 503
    assert "secret-value" not in str(caught.value)


async def test_without_a_pool_the_action_fails_closed(rig: Rig) -> None:
    with pytest.raises(TeeError) as caught:
        await tee(job="upper").apply(values("x"), rig.ctx(tee=None))
    assert caught.value.status == 503


async def test_a_worker_the_kms_never_attested_gets_no_key(rig: Rig) -> None:
    # The KMS does not trust the gateway: its sessions are its own.
    rig.lab.kms.sessions.clear()
    with pytest.raises(JobFailed, match="grant: unattested"):
        await tee(job="upper").apply(values("x"), rig.ctx())
    assert seen(rig.lab.workers) == []


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("unreachable", "unreachable"),
        ("forged", "response: bad_envelope"),
        ("unknown_job", "refused \\(unknown_job\\)"),
        ("short", "a different number of values"),
        ("kms_down", "grant: kms_unavailable"),
    ],
    ids=["unreachable", "forged", "unknown-job", "short", "kms-down"],
)
async def test_every_failure_fails_the_batch_closed(rig: Rig, breakage: str, message: str) -> None:
    job = {"unknown_job": "nope", "short": "short"}.get(breakage, "upper")
    for w in rig.lab.workers:
        w.down = breakage == "unreachable"
        w.forge_response = breakage == "forged"
    rig.lab.kms.down = breakage == "kms_down"
    with pytest.raises(JobFailed, match=message) as caught:
        await tee(job=job).apply(values("card-4111", "card-4242"), rig.ctx())
    assert caught.value.status == 503
    assert "4111" not in str(caught.value)
    assert "4242" not in str(caught.value)


async def test_a_worker_a_job_cannot_reach_leaves_the_pool(rig: Rig) -> None:
    rig.lab.workers[0].down = True
    with pytest.raises(JobFailed):
        await tee(job="upper").apply(values("x"), rig.ctx())
    assert [m.link for m in rig.pool.members()] == [rig.lab.workers[1]]
    out = await run(tee(job="upper"), rig.ctx(), "y")
    assert out[0].value == "Y"


async def test_an_evicted_worker_gets_no_more_jobs(rig: Rig) -> None:
    rig.lab.workers[1].measurement = CHANGED
    for m in rig.pool.members():  # force re-attestation now
        object.__setattr__(m, "attested_at", -1e9)
    await rig.pool.refresh()
    for _ in range(4):
        await run(tee(job="upper"), rig.ctx(), "x")
    assert [len(w.seen) for w in rig.lab.workers] == [4, 0]
    assert rig.lab.kms.granted == ["tee-a"] * 4


async def test_the_tenant_and_request_id_are_bound_into_the_grant(rig: Rig) -> None:
    await run(tee(job="upper"), rig.ctx(tenant="acme", request_id="rid-7"), "x")
    [grant] = rig.lab.kms.grants.values()
    assert (grant.binding.tenant, grant.binding.request_id, grant.binding.job) == (
        "acme",
        "rid-7",
        "upper",
    )


async def test_a_stale_key_fails_the_job_and_the_worker_is_attested_again(rig: Rig) -> None:
    first = rig.pool.members()[0]  # round robin starts here
    rig.lab.workers[0].keys.clear()  # the worker dropped the key the pool attested
    with pytest.raises(JobFailed, match="stale_key"):
        await tee(job="upper").apply(values("x"), rig.ctx())
    await asyncio.gather(*rig.pool._background)  # the re-attestation started in the background
    again = rig.pool.members()[0]
    assert again.link is first.link
    assert again.admission.generation == first.admission.generation + 1
    for _ in range(2):  # both workers serve again
        assert (await run(tee(job="upper"), rig.ctx(), "x"))[0].value == "X"
