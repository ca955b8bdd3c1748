"""The worker's RPC through its aiohttp app, against a KMS double on a real port.

Every refusal has its accepted twin; no value ever reaches a log line.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tee.attestation import Policy
from tee.binding import expectation
from tee.envelope import Binding, open_response, seal
from tee.errors import EnvelopeError, JobRefused
from tee.sim import SimVerifier, load_or_create_key
from tee.wire import b64d, b64e
from tests.tee.worker.harness import Rig, rig

SECRET = "4111111111111111"


async def attest(r: Rig, nonce: bytes | None = None) -> dict[str, Any]:
    resp = await r.client.post("/v1/attest", json={"nonce": b64e(nonce or os.urandom(32))})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def submit(
    r: Rig,
    job: str,
    values: list[str],
    *,
    key: bytes | None = None,
    path_job: str | None = None,
    **changes: Any,
) -> tuple[int, dict[str, Any], Binding, bytes]:
    """Grant + seal + POST, as the gateway does; returns status, answer, binding and R."""
    if key is None:
        key = b64d((await attest(r))["public_key"])
    grant = r.kms.grant(worker_key=key, job=job)
    fields: dict[str, Any] = {
        "tee_id": "tee-1",
        "worker_key": key,
        "job": job,
        "tenant": "acme",
        "request_id": "req-1",
        "grant_id": grant.binding.grant_id,
        "expires_at": grant.binding.expires_at,
    }
    fields.update(changes)
    binding = Binding(**fields)
    sealed = seal(binding, grant.key, values)
    resp = await r.client.post(f"/v1/jobs/{path_job or job}", json=sealed.envelope)
    return resp.status, dict(await resp.json()), binding, sealed.response_key


async def test_info_states_identity_and_current_key(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        resp = await r.client.get("/v1/info")
        info = await resp.json()
        assert resp.status == 200
        assert set(info) == {
            "tee_id",
            "platform",
            "measurement",
            "jobs",
            "public_key",
            "generation",
        }
        assert info["tee_id"] == "tee-1"
        assert info["platform"] == "sim"
        assert info["measurement"] == r.worker.bundle.measurement.hex()
        assert info["jobs"] == sorted(["upper", "boom", "short", "not_str", "hang"])
        assert info["generation"] == 0
        assert len(b64d(info["public_key"])) == 32


async def test_attest_rotates_and_binds_the_new_key_to_the_nonce(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        before = (await (await r.client.get("/v1/info")).json())["public_key"]
        nonce = os.urandom(32)
        answer = await attest(r, nonce)
        assert set(answer) == {"platform", "evidence", "public_key", "generation"}
        assert answer["generation"] == 1
        assert answer["public_key"] != before
        key = b64d(answer["public_key"])
        claims = SimVerifier(load_or_create_key(r.data_dir).public_key()).verify(
            b64d(answer["evidence"]),
            expect=expectation("sim", nonce, key),
            now=datetime.now(UTC),
            policy=Policy(
                measurements={"measurement": frozenset({r.worker.bundle.measurement.hex()})}
            ),
        )
        assert claims.public_key == key
        # The KMS knew the new key before the worker answered.
        assert key in r.kms.attested_keys()
        assert r.kms.calls == ["challenge", "attest"]
        info = await (await r.client.get("/v1/info")).json()
        assert (info["public_key"], info["generation"]) == (answer["public_key"], 1)


async def test_evidence_for_another_nonce_does_not_verify(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        answer = await attest(r, b"\1" * 32)
        with pytest.raises(Exception, match="nonce"):
            SimVerifier(load_or_create_key(r.data_dir).public_key()).verify(
                b64d(answer["evidence"]),
                expect=expectation("sim", b"\2" * 32, b64d(answer["public_key"])),
                now=datetime.now(UTC),
                policy=Policy(),
            )


@pytest.mark.parametrize(
    "body",
    [{}, {"nonce": b64e(b"x" * 31)}, {"nonce": "A=="}, {"nonce": b64e(b"x" * 32), "more": 1}, [1]],
    ids=["empty", "short", "bad-b64", "extra", "list"],
)
async def test_attest_refuses_bad_nonces(tmp_path: Path, body: object) -> None:
    async with rig(tmp_path) as r:
        resp = await r.client.post("/v1/attest", json=body)
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"
        assert r.kms.calls == []


async def test_attest_fails_when_the_kms_refuses_or_is_down(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.kms.retired = True
        resp = await r.client.post("/v1/attest", json={"nonce": b64e(os.urandom(32))})
        assert resp.status == 403
        assert (await resp.json())["error"] == "kms_refused"
        r.kms.retired = False
        r.kms.fail_next = 1
        resp = await r.client.post("/v1/attest", json={"nonce": b64e(os.urandom(32))})
        assert resp.status == 503
        assert (await resp.json())["error"] == "kms_unavailable"
        await attest(r)  # and the twin: it works again


async def test_a_changed_bundle_is_refused_by_the_kms(tmp_path: Path) -> None:
    """The KMS lists another measurement: the worker's attestation to it fails."""
    async with rig(tmp_path) as r:
        r.kms.measurement = "00" * 48
        resp = await r.client.post("/v1/attest", json={"nonce": b64e(os.urandom(32))})
        assert resp.status == 403
        assert (await resp.json())["error"] == "kms_refused"


async def test_job_round_trip(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        status, answer, binding, response_key = await submit(r, "upper", ["abc", "", "é"])
        assert status == 200
        assert set(answer) == {"v", "nonce", "ct"}
        assert open_response(binding, response_key, answer) == ["ABC", "", "É"]
        assert r.kms.calls == ["challenge", "attest", "release"]


async def test_the_answer_opens_only_under_r(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        _, answer, binding, _ = await submit(r, "upper", [SECRET])
        with pytest.raises(EnvelopeError):
            open_response(binding, os.urandom(32), answer)


async def test_a_replayed_envelope_gets_no_second_key(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        key = b64d((await attest(r))["public_key"])
        grant = r.kms.grant(worker_key=key, job="upper")
        sealed = seal(grant.binding, grant.key, ["a"])
        first = await r.client.post("/v1/jobs/upper", json=sealed.envelope)
        assert open_response(grant.binding, sealed.response_key, await first.json()) == ["A"]
        again = await r.client.post("/v1/jobs/upper", json=sealed.envelope)
        assert again.status == 200
        with pytest.raises(JobRefused) as e:
            open_response(grant.binding, sealed.response_key, await again.json())
        assert e.value.code == "release_refused"


async def test_a_binding_the_grant_does_not_match_is_refused_by_the_kms(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        status, answer, binding, response_key = await submit(r, "upper", ["a"], request_id="other")
        assert status == 200
        with pytest.raises(JobRefused) as e:
            open_response(binding, response_key, answer)
        assert e.value.code == "release_refused"


async def test_kms_down_at_release_is_sealed_kms_unavailable(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        key = b64d((await attest(r))["public_key"])
        grant = r.kms.grant(worker_key=key, job="upper")
        sealed = seal(grant.binding, grant.key, ["a"])
        r.kms.fail_next = 1
        resp = await r.client.post("/v1/jobs/upper", json=sealed.envelope)
        with pytest.raises(JobRefused) as e:
            open_response(grant.binding, sealed.response_key, await resp.json())
        assert e.value.code == "kms_unavailable"


async def test_a_revoked_session_is_renewed_once(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        key = b64d((await attest(r))["public_key"])
        grant = r.kms.grant(worker_key=key, job="upper")
        r.kms.sessions.clear()  # the KMS forgot (revoked / expired) the session
        sealed = seal(grant.binding, grant.key, ["a"])
        resp = await r.client.post("/v1/jobs/upper", json=sealed.envelope)
        assert open_response(grant.binding, sealed.response_key, await resp.json()) == ["A"]
        assert r.kms.calls[-4:] == ["release", "challenge", "attest", "release"]


@pytest.mark.parametrize(
    ("job", "code"),
    [("boom", "job_failed"), ("short", "bad_result"), ("not_str", "bad_result")],
    ids=["raises", "wrong-length", "not-strings"],
)
async def test_job_failures_are_sealed_and_never_logged_with_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, job: str, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig(tmp_path) as r:
        status, answer, binding, response_key = await submit(r, job, [SECRET, "x"])
        assert status == 200
        with pytest.raises(JobRefused) as e:
            open_response(binding, response_key, answer)
        assert e.value.code == code
    assert SECRET not in caplog.text
    assert "leaked" not in caplog.text


async def test_a_job_that_hangs_times_out(tmp_path: Path) -> None:
    async with rig(tmp_path, job_timeout=0.2) as r:
        try:
            _, answer, binding, response_key = await submit(r, "hang", ["a"])
            with pytest.raises(JobRefused) as e:
                open_response(binding, response_key, answer)
            assert e.value.code == "job_timeout"
        finally:
            gate = r.worker.bundle.jobs["hang"].__globals__["GATE"]
            gate.set()


async def test_the_previous_key_works_during_its_grace_only(tmp_path: Path) -> None:
    async with rig(tmp_path, grace=30) as r:
        old = b64d((await attest(r))["public_key"])
        await attest(r)  # rotates: `old` is now in its grace
        status, answer, binding, response_key = await submit(r, "upper", ["a"], key=old)
        assert status == 200
        assert open_response(binding, response_key, answer) == ["A"]
        r.clock.t += 30.5
        status, answer, _, _ = await submit(r, "upper", ["a"], key=old)
        assert (status, answer["error"]) == (410, "stale_key")


async def test_logs_never_carry_values(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with rig(tmp_path) as r:
        _, answer, binding, response_key = await submit(r, "upper", [SECRET])
        assert open_response(binding, response_key, answer) == [SECRET]
    assert "job upper tenant acme request req-1: ok" in caplog.text
    assert SECRET not in caplog.text


async def _refusal(r: Rig, **kw: Any) -> tuple[int, str]:
    status, answer, _, _ = await submit(r, **kw)
    assert r.kms.calls.count("release") == 0  # refused before any key was asked for
    return status, str(answer["error"])


async def test_an_unknown_job_is_refused(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        assert await _refusal(r, job="nope", values=["a"]) == (400, "unknown_job")


async def test_a_path_that_differs_from_the_binding_is_refused(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        assert await _refusal(r, job="upper", values=["a"], path_job="boom") == (400, "unknown_job")


async def test_an_envelope_for_another_tee_is_refused(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        assert await _refusal(r, job="upper", values=["a"], tee_id="tee-2") == (403, "wrong_tee")


async def test_an_expired_envelope_is_refused(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        got = await _refusal(r, job="upper", values=["a"], expires_at=int(time.time()) - 1)
        assert got == (410, "expired")


async def test_a_key_the_worker_never_had_is_refused(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await attest(r)
        r.kms.sessions["x"] = ("tee-1", b"\7" * 32)  # let the double grant it
        assert await _refusal(r, job="upper", values=["a"], key=b"\7" * 32) == (410, "stale_key")


async def test_an_envelope_that_does_not_open_is_refused(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        key = b64d((await attest(r))["public_key"])
        grant = r.kms.grant(worker_key=key, job="upper")
        sealed = seal(grant.binding, grant.key, ["a"])
        raw = bytearray(b64d(sealed.envelope["sealed"]))
        raw[40] ^= 1
        resp = await r.client.post(
            "/v1/jobs/upper", json=dict(sealed.envelope, sealed=b64e(bytes(raw)))
        )
        assert (resp.status, (await resp.json())["error"]) == (400, "bad_envelope")
        assert "release" not in r.kms.calls


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/jobs/upper", b"not json", 400, "bad_request"),
        ("/v1/jobs/upper", b"{}", 400, "bad_envelope"),
        ("/v1/jobs/upper", b"[]", 400, "bad_envelope"),
        ("/v1/nothing", b"{}", 404, "not_found"),
        ("/v1/info", b"{}", 405, "method_not_allowed"),
    ],
    ids=["not-json", "empty-object", "list", "unknown-route", "wrong-method"],
)
async def test_bad_requests_get_json_errors(
    tmp_path: Path, path: str, body: bytes, status: int, code: str
) -> None:
    async with rig(tmp_path) as r:
        resp = await r.client.post(path, data=body)
        assert resp.status == status
        doc = await resp.json()
        assert doc["error"] == code
        assert isinstance(doc["message"], str)


async def test_a_body_above_the_limit_is_413(tmp_path: Path) -> None:
    async with rig(tmp_path, max_body=1024) as r:
        resp = await r.client.post("/v1/jobs/upper", data=b"{" + b" " * 2048 + b"}")
        assert resp.status == 413
        assert (await resp.json())["error"] == "body_too_large"
