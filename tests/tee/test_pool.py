"""tee.pool: admission against the KMS registry, re-attestation, eviction, round robin, fail closed."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from tee.pool import PoolUnavailable, Schedule, TeePool, WorkerSpec
from tests.tee.pool_support import CHANGED, GOOD, Lab, SimWorker


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Rng:
    """Counts nonces (deterministic, distinct) so the test sees which the pool used."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, size: int) -> bytes:
        self.n += 1
        return self.n.to_bytes(size, "big")


def make_pool(
    lab: Lab, *, clock: Clock | None = None, sim: bool = True, rng: Rng | None = None
) -> TeePool[SimWorker]:
    workers = [(WorkerSpec(w.tee_id, f"unix:/run/w{i}.sock"), w) for i, w in enumerate(lab.workers)]
    return TeePool(
        workers,
        registry=lab.kms,
        audit=lab.audit,
        verification=lab.verification(sim=sim),
        schedule=Schedule(reattest_every=60, retry_every=5, attest_timeout=5),
        monotonic=clock or Clock(),
        rng=rng or Rng(),
    )


def evictions(check: str) -> float:
    value = REGISTRY.get_sample_value(
        "tokengate_tee_evictions_total", {"tee_id": "tee-a", "check": check}
    )
    return value or 0.0


async def test_start_admits_every_worker_and_jobs_go_round_robin() -> None:
    lab = Lab.build()
    pool = make_pool(lab)
    await pool.refresh(everyone=True)
    assert pool.ready
    assert len(pool.members()) == 2
    picked = Counter(id(pool.pick().link) for _ in range(10))
    assert sorted(picked.values()) == [5, 5]
    admitted = lab.audit.find("tee.attest", result="admitted")
    assert [a["worker"] for a in admitted] == ["tee-a@unix:/run/w0.sock", "tee-a@unix:/run/w1.sock"]
    assert all(a["platform"] == "sim" and a["generation"] == 1 for a in admitted)


async def test_each_attestation_uses_a_fresh_nonce_from_the_injected_rng() -> None:
    lab = Lab.build(1)
    clock = Clock()
    rng = Rng()
    pool = make_pool(lab, clock=clock, rng=rng)
    await pool.refresh(everyone=True)
    clock.t += 60
    await pool.refresh()
    assert lab.workers[0].nonces == [(1).to_bytes(32, "big"), (2).to_bytes(32, "big")]


async def test_members_are_reattested_on_schedule_with_a_new_key() -> None:
    lab = Lab.build(1)
    clock = Clock()
    pool = make_pool(lab, clock=clock)
    await pool.refresh(everyone=True)
    first = pool.pick().public_key
    clock.t += 59
    await pool.refresh()
    assert lab.workers[0].generation == 1  # not due yet
    clock.t += 1
    await pool.refresh()
    assert lab.workers[0].generation == 2
    assert pool.pick().public_key != first
    assert pool.pick().admission.generation == 2


async def test_a_worker_whose_bundle_changed_is_evicted_and_its_keys_revoked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lab = Lab.build()
    clock = Clock()
    pool = make_pool(lab, clock=clock)
    await pool.refresh(everyone=True)
    changed = lab.workers[1]
    old_key = pool.members()[1].public_key
    before = evictions("measurement")
    changed.measurement = CHANGED  # restarted with another bundle
    clock.t += 60
    with caplog.at_level(logging.WARNING, logger="tokengate.tee"):
        await pool.refresh()
    assert [m.link for m in pool.members()] == [lab.workers[0]]
    assert {pool.pick().link for _ in range(4)} == {lab.workers[0]}
    assert evictions("measurement") == before + 1
    [evict] = lab.audit.find("tee.evict")
    assert evict["check"] == "measurement"
    assert evict["worker"] == "tee-a@unix:/run/w1.sock"
    assert evict["revoked"] is True
    refused = lab.audit.find("tee.attest", result="refused")
    assert [r["check"] for r in refused] == ["measurement"]
    new_key = next(k for k in changed.keys if k != old_key)
    assert ("tee-a", old_key) in lab.kms.revoked
    assert ("tee-a", new_key) in lab.kms.revoked
    assert not any(s[1] in (old_key, new_key) for s in lab.kms.sessions)
    assert any("evicted" in r.getMessage() for r in caplog.records)


async def test_an_evicted_worker_is_not_evicted_again_and_is_readmitted_once_fixed() -> None:
    lab = Lab.build(1)
    clock = Clock()
    pool = make_pool(lab, clock=clock)
    await pool.refresh(everyone=True)
    lab.workers[0].measurement = CHANGED
    clock.t += 60
    await pool.refresh()
    clock.t += 5
    await pool.refresh()  # retried: refused again, but no second eviction
    assert len(lab.audit.find("tee.evict")) == 1
    assert len(lab.audit.find("tee.attest", result="refused")) == 2
    lab.workers[0].measurement = GOOD
    clock.t += 4
    await pool.refresh()
    assert pool.members() == ()  # not yet due for a retry
    clock.t += 1
    await pool.refresh()
    assert len(pool.members()) == 1
    assert len(lab.audit.find("tee.attest", result="admitted")) == 2


async def test_no_worker_left_fails_closed_with_503() -> None:
    lab = Lab.build()
    pool = make_pool(lab)
    for w in lab.workers:
        w.down = True
    await pool.refresh(everyone=True)
    assert not pool.ready
    with pytest.raises(PoolUnavailable) as caught:
        pool.pick()
    assert caught.value.status == 503
    assert caught.value.code == "tee_unavailable"
    # Start-up failures are evictions once (alerted), not audited attestations (no answer).
    assert [e["check"] for e in lab.audit.find("tee.evict")] == ["unavailable", "unavailable"]
    assert lab.audit.find("tee.attest") == []


async def test_a_retired_tee_is_evicted() -> None:
    lab = Lab.build()
    clock = Clock()
    pool = make_pool(lab, clock=clock)
    await pool.refresh(everyone=True)
    lab.kms.retire("tee-a")
    clock.t += 60
    await pool.refresh()
    assert not pool.ready
    assert {e["check"] for e in lab.audit.find("tee.evict")} == {"retired"}


async def test_replayed_evidence_for_an_old_nonce_is_refused() -> None:
    lab = Lab.build(1)
    clock = Clock()
    pool = make_pool(lab, clock=clock)
    await pool.refresh(everyone=True)
    worker = lab.workers[0]
    worker.replay = worker.nonces[0]  # answers with evidence bound to the first nonce
    clock.t += 60
    await pool.refresh()
    assert not pool.ready
    assert [e["check"] for e in lab.audit.find("tee.evict")] == ["nonce"]


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ("debug", "debug"),
        ("no_sim", "platform"),
        ("registry_says_nitro", "format"),
        ("unknown_tee", "unavailable"),
        ("kms_down", "unavailable"),
        ("kms_refused_the_worker", "refused"),
    ],
)
async def test_refusals_name_the_failed_check(change: str, check: str) -> None:
    lab = Lab.build(1)
    sim = True
    if change == "debug":
        lab.workers[0].debug = True
    elif change == "no_sim":
        sim = False
    elif change == "registry_says_nitro":
        lab.kms.register("tee-a", GOOD, platform="nitro")
    elif change == "unknown_tee":
        lab.kms.entries.clear()
    elif change == "kms_refused_the_worker":
        lab.workers[0].refuse = "kms_refused"
    else:
        lab.kms.down = True
    pool = make_pool(lab, sim=sim)
    await pool.refresh(everyone=True)
    assert not pool.ready
    assert [e["check"] for e in lab.audit.find("tee.evict")] == [check]
    if change == "kms_refused_the_worker":
        assert lab.audit.find("tee.evict")[0]["detail"] == "kms_refused"


async def test_debug_evidence_passes_when_the_registry_allows_debug() -> None:
    lab = Lab.build(1)
    lab.kms.register("tee-a", GOOD, allow_debug=True)
    lab.workers[0].debug = True
    pool = make_pool(lab)
    await pool.refresh(everyone=True)
    assert pool.ready


async def test_an_admission_that_cannot_be_audited_does_not_happen() -> None:
    lab = Lab.build(1)
    lab.audit.fail = True
    pool = make_pool(lab)
    await pool.refresh(everyone=True)
    assert not pool.ready
    assert lab.kms.revoked  # the key the worker attested with is revoked at the KMS


async def test_a_member_a_job_found_unreachable_is_out_until_it_reattests() -> None:
    lab = Lab.build()
    clock = Clock()
    pool = make_pool(lab, clock=clock)
    await pool.refresh(everyone=True)
    gone = pool.members()[0]
    await pool.evict(gone, "unreachable", "a job could not reach it")
    assert [m.link for m in pool.members()] == [lab.workers[1]]
    assert [e["check"] for e in lab.audit.find("tee.evict")] == ["unreachable"]
    await pool.evict(gone, "unreachable", "again")  # a stale member: nothing happens
    assert len(lab.audit.find("tee.evict")) == 1
    clock.t += 5
    await pool.refresh()
    assert len(pool.members()) == 2


async def test_start_and_close_run_the_background_task() -> None:
    lab = Lab.build(1)
    pool = make_pool(lab)
    await pool.start()
    assert pool.ready
    await pool.close()
    await pool.close()  # idempotent


def test_a_pool_needs_distinct_workers() -> None:
    lab = Lab.build(1)
    spec = WorkerSpec("tee-a", "unix:/run/w.sock")
    with pytest.raises(ValueError, match="configured twice"):
        TeePool(
            [(spec, lab.workers[0]), (spec, lab.workers[0])],
            registry=lab.kms,
            audit=lab.audit,
            verification=lab.verification(),
        )
    with pytest.raises(ValueError, match="no worker"):
        TeePool([], registry=lab.kms, audit=lab.audit, verification=lab.verification())
