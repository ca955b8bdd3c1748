"""The KMS service run for real (open_service on a free port): registry and key broker over HTTP.

Workers are simulated TEEs whose evidence is signed by tee.sim.sign_evidence
with the development key under the KMS's data dir; the keyring, audit log and
stores are the real ones (SQLite, and PostgreSQL for the main flow).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tee.envelope import Binding, open_release
from tee.wire import b64d, b64e
from tests.kms.service_support import (
    MEASUREMENT,
    Kms,
    SimWorker,
    grant_body,
    release_body,
    running_kms,
)


@pytest.fixture
async def kms(tmp_path: Path) -> AsyncIterator[Kms]:
    async with running_kms(tmp_path) as k:
        yield k


async def _grant(kms: Kms, worker: SimWorker, **over: object) -> dict[str, object]:
    reply = await kms.call(
        "POST", "/v1/broker/grants", grant_body(worker, **over), token=kms.gateway
    )
    assert reply.status == 200, reply
    return reply.body


def _binding(worker: SimWorker, grant: dict[str, object], **over: object) -> Binding:
    fields: dict[str, object] = {
        "tee_id": worker.tee_id,
        "worker_key": worker.public,
        "job": "luhn",
        "tenant": "acme",
        "request_id": "req-1",
        "grant_id": grant["grant_id"],
        "expires_at": grant["expires_at"],
    }
    fields.update(over)
    return Binding(**fields)  # type: ignore[arg-type]


# ---- the whole flow ----


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_challenge_attest_grant_release_once(
    backend: str, tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    dsn, schema = pg_schema
    store = dsn if backend == "postgresql" else None
    async with running_kms(tmp_path, store=store, schema=schema) as kms:
        assert (await kms.register()).status == 201
        worker = SimWorker(kms)
        session = await worker.session()
        grant = await _grant(kms, worker, ttl=30)
        key = b64d(grant["key"])
        assert len(key) == 32
        assert grant["expires_at"] == int(kms.clock.now.timestamp()) + 30

        first = await kms.call(
            "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
        )
        assert first.status == 200, first
        opened = open_release(_binding(worker, grant), b64d(first.body["wrapped"]), worker.private)
        assert opened == key

        second = await kms.call(
            "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
        )
        assert (second.status, second.body["error"]) == (409, "already_released")

        released = kms.audit_events("kms.release")
        assert len(released) == 1
        assert released[0]["fields"]["grant_id"] == grant["grant_id"]
        refusals = [e["fields"] for e in kms.audit_events("kms.refuse")]
        assert {"op": "release", "code": "already_released"}.items() <= refusals[-1].items()


async def test_the_wrapped_key_opens_only_for_the_attested_key_and_binding(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    grant = await _grant(kms, worker)
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
    )
    wrapped = b64d(reply.body["wrapped"])
    from tee.errors import EnvelopeError

    with pytest.raises(EnvelopeError):
        open_release(_binding(worker, grant), wrapped, SimWorker(kms).private)
    with pytest.raises(EnvelopeError):
        open_release(_binding(worker, grant, request_id="req-2"), wrapped, worker.private)


# ---- attestation refusals ----


async def test_replayed_nonce_is_refused(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    nonce = await worker.challenge()
    assert (await worker.attest(nonce)).status == 200
    replay = await worker.attest(nonce)
    assert (replay.status, replay.body["error"]) == (403, "attestation_refused")
    assert "nonce" in str(replay.body["message"])
    outcomes = [
        (e["fields"]["outcome"], e["fields"].get("check")) for e in kms.audit_events("kms.attest")
    ]
    assert outcomes == [("ok", None), ("refused", "nonce")]


async def test_expired_or_foreign_nonce_is_refused(kms: Kms) -> None:
    await kms.register("w1")
    await kms.register("w2")
    w1, w2 = SimWorker(kms, "w1"), SimWorker(kms, "w2")
    nonce = await w1.challenge()
    assert (await w2.attest(nonce)).status == 403  # issued for w1
    nonce = await w1.challenge()
    kms.clock.advance(61)
    assert (await w1.attest(nonce)).status == 403
    assert (await w1.attest()).status == 200  # a fresh one works


async def test_a_nonce_is_burnt_by_a_failed_attempt(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    nonce = await worker.challenge()
    bad = worker.evidence(nonce, public_key=bytes(32))
    assert (await worker.attest(nonce, bad)).status == 403
    assert (await worker.attest(nonce)).status == 403


@pytest.mark.parametrize("what", ["public_key", "nonce"])
async def test_wrong_binding_is_refused(kms: Kms, what: str) -> None:
    await kms.register()
    worker = SimWorker(kms)
    nonce = await worker.challenge()
    if what == "public_key":
        evidence = worker.evidence(nonce, public_key=SimWorker(kms).public)
    else:
        evidence = worker.evidence(bytes(32))
    reply = await worker.attest(nonce, evidence)
    assert (reply.status, reply.body["error"]) == (403, "attestation_refused")
    checks = [e["fields"].get("check") for e in kms.audit_events("kms.attest")]
    assert checks[-1] in ("nonce", "public_key", "report_data")


async def test_unknown_measurement_and_debug_are_refused(kms: Kms) -> None:
    await kms.register()
    other = SimWorker(kms, measurement="cd" * 48)
    reply = await other.attest()
    assert reply.status == 403
    assert kms.audit_events("kms.attest")[-1]["fields"]["check"] == "measurement"
    worker = SimWorker(kms)
    nonce = await worker.challenge()
    debug = await worker.attest(nonce, worker.evidence(nonce, debug=True))
    assert debug.status == 403
    assert kms.audit_events("kms.attest")[-1]["fields"]["check"] == "debug"


async def test_forged_evidence_is_refused(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    nonce = await worker.challenge()
    evidence = bytearray(worker.evidence(nonce))
    evidence[20] ^= 1
    reply = await worker.attest(nonce, bytes(evidence))
    assert reply.status == 403


async def test_sim_evidence_is_refused_unless_allowed(tmp_path: Path) -> None:
    async with running_kms(tmp_path, insecure_simulated_tee=False) as kms:
        await kms.register()
        reply = await SimWorker(kms).attest()
        assert (reply.status, reply.body["error"]) == (403, "attestation_refused")
        assert kms.audit_events("kms.attest")[-1]["fields"]["check"] == "platform"


async def test_unknown_tee_is_404(kms: Kms) -> None:
    reply = await kms.call("POST", "/v1/broker/challenge", {"tee_id": "ghost"})
    assert (reply.status, reply.body["error"]) == (404, "unknown_tee")


async def test_open_challenges_are_capped(tmp_path: Path) -> None:
    async with running_kms(tmp_path, broker={"max_pending_nonces": 2}) as kms:
        await kms.register()
        worker = SimWorker(kms)
        await worker.challenge()
        await worker.challenge()
        reply = await kms.call("POST", "/v1/broker/challenge", {"tee_id": "w1"})
        assert (reply.status, reply.body["error"]) == (429, "too_many_challenges")


# ---- grants: the KMS does not trust the gateway ----


async def test_grant_for_an_unattested_worker_key_is_refused(kms: Kms) -> None:
    await kms.register()
    attested = SimWorker(kms)
    await attested.session()
    stranger = SimWorker(kms)  # never attested to the KMS
    reply = await kms.call("POST", "/v1/broker/grants", grant_body(stranger), token=kms.gateway)
    assert (reply.status, reply.body["error"]) == (403, "unattested")
    refusal = kms.audit_events("kms.refuse")[-1]["fields"]
    assert refusal["op"] == "grant"
    assert refusal["actor"] == "gw-1"


async def test_grant_needs_the_session_of_exactly_that_tee(kms: Kms) -> None:
    await kms.register("w1")
    await kms.register("w2")
    worker = SimWorker(kms, "w1")
    await worker.session()
    reply = await kms.call(
        "POST", "/v1/broker/grants", grant_body(worker, tee_id="w2"), token=kms.gateway
    )
    assert (reply.status, reply.body["error"]) == (403, "unattested")


async def test_grant_after_the_session_expired_is_refused(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    await worker.session()
    kms.clock.advance(601)
    reply = await kms.call("POST", "/v1/broker/grants", grant_body(worker), token=kms.gateway)
    assert (reply.status, reply.body["error"]) == (403, "unattested")


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"tenant": "other"}, "tenant_not_allowed"),
        ({"job": "other"}, "job_not_allowed"),
        ({"ttl": 0}, "bad_request"),
        ({"ttl": 301}, "bad_request"),
        ({"worker_key": b64e(bytes(31))}, "bad_request"),
        ({"request_id": "has space"}, "bad_request"),
        ({"extra": 1}, "bad_request"),
    ],
    ids=["tenant", "job", "ttl0", "ttl301", "short-key", "request-id", "extra-member"],
)
async def test_grant_rules(kms: Kms, over: dict[str, object], code: str) -> None:
    await kms.register()
    worker = SimWorker(kms)
    await worker.session()
    reply = await kms.call(
        "POST", "/v1/broker/grants", grant_body(worker, **over), token=kms.gateway
    )
    assert reply.body["error"] == code
    assert reply.status in (400, 403)


# ---- release refusals ----


async def test_release_with_another_sessions_key_is_refused(kms: Kms) -> None:
    await kms.register()
    owner, other = SimWorker(kms), SimWorker(kms)
    await owner.session()
    other_session = await other.session()  # attested too, but not the grant's key
    grant = await _grant(kms, owner)
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=other_session
    )
    assert (reply.status, reply.body["error"]) == (403, "grant_mismatch")
    # the grant is still there for its own worker
    assert kms.audit_events("kms.release") == []


@pytest.mark.parametrize(
    "over",
    [{"job": "other"}, {"tenant": "other"}, {"request_id": "req-2"}],
    ids=["job", "tenant", "request"],
)
async def test_release_with_other_job_tenant_or_request_is_refused(
    kms: Kms, over: dict[str, object]
) -> None:
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    grant = await _grant(kms, worker)
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"], **over), token=session
    )
    assert (reply.status, reply.body["error"]) == (403, "grant_mismatch")
    ok = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
    )
    assert ok.status == 200


async def test_expired_grant_is_refused(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    grant = await _grant(kms, worker, ttl=5)
    kms.clock.advance(5)
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
    )
    assert (reply.status, reply.body["error"]) == (410, "grant_expired")


async def test_release_without_or_with_a_dead_session_is_401(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    grant = await _grant(kms, worker)
    body = release_body(grant["grant_id"])
    assert (await kms.call("POST", "/v1/broker/release", body)).status == 401
    assert (await kms.call("POST", "/v1/broker/release", body, token=kms.gateway)).status == 401
    fake = "tgs_" + "a" * 52
    assert (await kms.call("POST", "/v1/broker/release", body, token=fake)).status == 401
    kms.clock.advance(601)
    assert (await kms.call("POST", "/v1/broker/release", body, token=session)).status == 401


async def test_unknown_grant_is_404(kms: Kms) -> None:
    await kms.register()
    session = await SimWorker(kms).session()
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body("tgr_" + "a" * 26), token=session
    )
    assert (reply.status, reply.body["error"]) == (404, "unknown_grant")


async def test_revoke_kills_sessions_and_unreleased_grants(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    done = await _grant(kms, worker, request_id="done")
    pending = await _grant(kms, worker)
    ok = await kms.call(
        "POST",
        "/v1/broker/release",
        release_body(done["grant_id"], request_id="done"),
        token=session,
    )
    assert ok.status == 200
    reply = await kms.call(
        "POST",
        "/v1/broker/revoke",
        {"tee_id": "w1", "worker_key": b64e(worker.public)},
        token=kms.gateway,
    )
    assert reply.body == {"revoked_sessions": 1, "revoked_grants": 1}
    after = await kms.call(
        "POST", "/v1/broker/release", release_body(pending["grant_id"]), token=session
    )
    assert after.status == 401  # the session is gone too
    fresh = await worker.session()
    again = await kms.call(
        "POST", "/v1/broker/release", release_body(pending["grant_id"]), token=fresh
    )
    assert (again.status, again.body["error"]) == (410, "grant_revoked")
    revoke = kms.audit_events("kms.revoke")[-1]["fields"]
    assert (revoke["reason"], revoke["revoked_grants"]) == ("api", 1)


# ---- retired TEEs ----


async def test_retired_tee_is_refused_at_every_step(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    grant = await _grant(kms, worker)
    open_nonce = await worker.challenge()

    retired = await kms.call("POST", "/v1/tees/w1/retire", token=kms.admin)
    assert retired.status == 200
    assert retired.body["status"] == "retired"

    challenge = await kms.call("POST", "/v1/broker/challenge", {"tee_id": "w1"})
    assert (challenge.status, challenge.body["error"]) == (403, "retired")
    attest = await worker.attest(open_nonce)
    assert (attest.status, attest.body["error"]) == (403, "retired")
    new_grant = await kms.call("POST", "/v1/broker/grants", grant_body(worker), token=kms.gateway)
    assert (new_grant.status, new_grant.body["error"]) == (403, "retired")
    release = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
    )
    assert release.status in (401, 403)  # the session was revoked with the retirement
    retire_events = [e["fields"] for e in kms.audit_events("kms.tee_retire")]
    assert [e["result"] for e in retire_events] == ["requested", "ok"]
    assert retire_events[-1]["revoked_grants"] == 1


async def test_release_refused_when_retired_even_if_revocation_missed_it(kms: Kms) -> None:
    """The broker re-reads the registry: a retired entry refuses a still-live session."""
    await kms.register()
    worker = SimWorker(kms)
    session = await worker.session()
    grant = await _grant(kms, worker)
    # retire in the registry only (as if the revocation step had failed)
    from tee.registry import open_registry

    registry = open_registry("sqlite:kms/kms.db", data_dir=kms.data_dir)
    await registry.open()
    try:
        await registry.retire("w1", now=kms.clock.now)
    finally:
        await registry.close()
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
    )
    assert (reply.status, reply.body["error"]) == (403, "retired")


# ---- registry API and roles ----


async def test_registry_crud_and_roles(kms: Kms) -> None:
    created = await kms.register(allow_debug=True)
    assert created.status == 201
    assert created.body["measurements"] == {"measurement": [MEASUREMENT]}
    dup = await kms.register()
    assert (dup.status, dup.body["error"]) == (409, "tee_exists")
    for token in (kms.admin, kms.gateway):
        listed = await kms.call("GET", "/v1/tees", token=token)
        assert [t["id"] for t in listed.body["tees"]] == ["w1"]
        one = await kms.call("GET", "/v1/tees/w1", token=token)
        assert one.body["status"] == "active"
    assert (await kms.call("GET", "/v1/tees/nope", token=kms.admin)).status == 404
    bad = await kms.register("w2", measurements={})
    assert (bad.status, bad.body["error"]) == (400, "bad_entry")
    register_events = kms.audit_events("kms.tee_register")
    assert [e["fields"]["tee_id"] for e in register_events] == ["w1"]
    assert register_events[0]["fields"]["actor"] == "admin-1"


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/v1/tees", "gateway"),
        ("POST", "/v1/tees/w1/retire", "gateway"),
        ("POST", "/v1/broker/grants", "admin"),
        ("POST", "/v1/broker/revoke", "admin"),
        ("POST", "/v1/root/random", "admin"),
    ],
    ids=["register", "retire", "grants", "revoke", "root"],
)
async def test_wrong_role_is_403(kms: Kms, method: str, path: str, role: str) -> None:
    token = kms.gateway if role == "gateway" else kms.admin
    reply = await kms.call(method, path, {"tee_id": "w1"}, token=token)
    assert (reply.status, reply.body["error"]) == (403, "forbidden")
    refusal = kms.audit_events("kms.refuse")[-1]["fields"]
    assert refusal["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/tees"),
        ("GET", "/v1/tees"),
        ("GET", "/v1/tees/w1"),
        ("POST", "/v1/tees/w1/retire"),
        ("POST", "/v1/broker/grants"),
        ("POST", "/v1/broker/revoke"),
        ("POST", "/v1/root/random"),
    ],
    ids=["register", "list", "get", "retire", "grants", "revoke", "root"],
)
async def test_no_or_bad_credential_is_401(kms: Kms, method: str, path: str) -> None:
    for token in (None, "tgk_" + "a" * 52, "not-a-credential"):
        reply = await kms.call(method, path, {}, token=token)
        assert (reply.status, reply.body["error"]) == (401, "unauthorized")
    refusals = kms.audit_events("kms.refuse")[-3:]
    assert [e["fields"]["code"] for e in refusals] == ["unauthorized"] * 3


async def test_one_credential_with_both_roles(kms: Kms) -> None:
    assert (await kms.call("POST", "/v1/tees", {"id": "x"}, token=kms.both)).status == 400
    assert (
        await kms.call("POST", "/v1/broker/revoke", {"tee_id": "x"}, token=kms.both)
    ).status == 200


# ---- HTTP shape ----


async def test_body_limits_and_json_errors(kms: Kms) -> None:
    big = {"tee_id": "w1", "pad": "x" * (300 * 1024)}
    reply = await kms.call("POST", "/v1/broker/challenge", big)
    assert (reply.status, reply.body["error"]) == (413, "body_too_large")
    async with kms.session.post(kms.url + "/v1/broker/challenge", data=b"{not json") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"
    async with kms.session.post(
        kms.url + "/v1/broker/challenge", data=b'{"tee_id":"a","tee_id":"b"}'
    ) as resp:
        assert resp.status == 400
    missing = await kms.call("GET", "/v1/nothing")
    assert (missing.status, missing.body["error"]) == (404, "not_found")
    wrong = await kms.call("GET", "/v1/broker/challenge")
    assert (wrong.status, wrong.body["error"]) == (405, "method_not_allowed")


async def test_probes_and_root_routes_are_wired(kms: Kms) -> None:
    assert (await kms.call("GET", "/healthz")).status == 200
    assert (await kms.call("GET", "/readyz")).status == 200
    rnd = await kms.call("POST", "/v1/root/random", {"n": 16}, token=kms.gateway)
    assert rnd.status == 200
    assert len(b64d(rnd.body["bytes"])) == 16


# ---- the audit log never holds secrets ----


async def test_audit_log_holds_no_keys_sessions_nonces_or_evidence(kms: Kms) -> None:
    await kms.register()
    worker = SimWorker(kms)
    nonce = await worker.challenge()
    evidence = worker.evidence(nonce)
    attest = await worker.attest(nonce, evidence)
    session = str(attest.body["session"])
    grant = await _grant(kms, worker)
    reply = await kms.call(
        "POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session
    )
    await kms.call("POST", "/v1/broker/release", release_body(grant["grant_id"]), token=session)
    await kms.call("POST", "/v1/broker/grants", grant_body(SimWorker(kms)), token=kms.gateway)
    text = kms.audit_text()
    for event in ("kms.tee_register", "kms.attest", "kms.grant", "kms.release", "kms.refuse"):
        assert kms.audit_events(event), event
    key = b64d(grant["key"])
    secrets = [
        key.hex(),
        b64e(key),
        str(grant["key"]),
        session,
        session[4:],
        b64e(nonce),
        nonce.hex(),
        b64e(evidence)[:40],
        evidence[:40].decode(),
        str(reply.body["wrapped"])[:40],
        b64e(worker.public),
        worker.public.hex(),
        kms.admin,
        kms.gateway,
    ]
    for secret in secrets:
        assert secret not in text
