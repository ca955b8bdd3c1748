"""POST /.tokengate/admin/v1/attestation/verify: real evidence, verdicts, audit, malformed input.

Real samples of every platform (tests/tee/vectors) with the clock pinned in
their windows through the body's ``at``; the real audit log on tmp_path. Every
verified case has its refused twin (a flipped bit, another time, another
platform, a wrong binding or measurement).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import AuditLog
from audit.errors import AuditError
from audit.schema import AuditValue
from proxy.adminapi.attest_api import VERIFY, add_attestation_api, simulated_key
from proxy.adminapi.attest_body import MAX_BODY
from proxy.adminapi.keys import Role, new_api_key
from proxy.teeconfig import TeeConfig
from tee.dcap import encode_evidence as dcap_evidence
from tee.sev_snp import encode_evidence as snp_evidence
from tee.sim import SimReport, load_or_create_key, sign_evidence
from tests.proxy.adminapi.conftest import ROLES, events, key_config
from tests.proxy.adminapi.test_openapi import check as check_schema
from tests.tee.test_sev_snp import SERIAL_ZERO_MESSAGE
from tokengate.errors import ConfigError

V = Path(__file__).resolve().parents[2] / "tee" / "vectors"
BETA = (V / "nitro" / "evervault_beta_2022-10-13.cose").read_bytes()
GA = (V / "nitro" / "evervault_ga_2023-09-18.cose").read_bytes()
BETA_AT = "2022-10-13T10:00:00Z"
GA_AT = "2023-09-18T16:00:00Z"
BETA_PCR0 = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b"
SERIAL_ZERO = pytest.mark.filterwarnings(
    f"ignore:{re.escape(SERIAL_ZERO_MESSAGE)}:cryptography.utils.CryptographyDeprecationWarning"
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def snp() -> bytes:
    d = V / "sev-snp"
    return snp_evidence(
        (d / "gosevguest_milan_report.bin").read_bytes(),
        (d / "gosevguest_milan_vcek.der").read_bytes(),
    )


def dcap(kind: str) -> bytes:
    d = V / "tdx-sgx"
    quote = {"tdx": "dcapqvl_tdx_quote_v4.bin", "sgx": "dcapqvl_sgx_quote_v3.bin"}[kind]
    collateral = json.loads((d / f"dcapqvl_{kind}_quote_collateral.json").read_text())
    return dcap_evidence((d / quote).read_bytes(), collateral)


@dataclass
class SimSwitch:
    """What the gateway config says about the simulated TEE (None: not allowed)."""

    key: Ed25519PublicKey | None = None
    source: Callable[[], Ed25519PublicKey | None] | None = None

    def __call__(self) -> Ed25519PublicKey | None:
        return self.source() if self.source is not None else self.key


@dataclass
class AttestApi:
    client: TestClient[web.Request, web.Application]
    keys: dict[str, str]
    data_dir: Path
    sim: SimSwitch = field(default_factory=SimSwitch)

    def sim_switch_to(self, source: Callable[[], Ed25519PublicKey | None]) -> None:
        self.sim.source = source

    async def verify(
        self, body: object, role: str = "auditor", **kw: Any
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        resp = await self.client.post(VERIFY.path, headers=headers, json=body, **kw)
        data = await resp.json()
        assert isinstance(data, dict)
        return resp.status, data


class FailingAudit:
    """The real audit log, except that attest.verify entries cannot be persisted."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        if event == "attest.verify":
            raise AuditError("audit: sink down")
        await self.log.emit(event, **fields)


NOW = datetime(2025, 7, 1, tzinfo=UTC)


async def _serve(audit: object, data_dir: Path) -> AsyncIterator[AttestApi]:
    keys = {role: new_api_key() for role in ROLES}
    sim = SimSwitch()
    app = web.Application()
    add_attestation_api(
        app,
        config=key_config(keys),
        auditor=audit,  # type: ignore[arg-type]
        sim_key=sim,
        clock=lambda: NOW,
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield AttestApi(client, keys, data_dir, sim)


@pytest.fixture
async def api(audit_log: AuditLog, data_dir: Path) -> AsyncIterator[AttestApi]:
    async for a in _serve(audit_log, data_dir):
        yield a


def nitro(evidence: bytes = BETA, at: str = BETA_AT, **extra: object) -> dict[str, object]:
    return {"platform": "nitro", "evidence": b64(evidence), "at": at, **extra}


def attest_events(data_dir: Path) -> list[dict[str, object]]:
    return [f for e, f in events(data_dir, "attest.") if e == "attest.verify"]


# --- verdicts on real evidence ---


@pytest.mark.parametrize("role", ROLES)
async def test_real_nitro_document_verified_by_every_role(api: AttestApi, role: str) -> None:
    status, data = await api.verify(nitro(), role)
    assert status == 200, data
    assert data["verdict"] == "verified"
    assert data["platform"] == "nitro"
    assert data["signature_and_chain"] == "valid"
    assert data["measurements"]["pcr0"] == BETA_PCR0
    assert data["tcb_status"] == "UpToDate"
    assert data["debug"] is False
    assert data["verified_at"] == "2022-10-13T10:00:00+00:00"
    assert data["evidence_sha256"] == hashlib.sha256(BETA).hexdigest()
    check_schema("AttestationVerdict", data)
    [entry] = attest_events(api.data_dir)
    assert entry["verdict"] == "verified"
    assert entry["actor"] == f"apikey:{role}"
    assert entry["evidence_sha256"] == data["evidence_sha256"]
    assert entry["evidence_bytes"] == len(BETA)
    assert f"pcr0={BETA_PCR0}" in entry["measurements"]  # type: ignore[operator]
    assert "check" not in entry


@pytest.mark.parametrize(
    ("offset", "check"),
    [(-1, "signature"), (-60, "signature"), (100, "format"), (2000, "root"), (4000, "chain")],
    ids=["sig-last", "sig-inner", "payload", "cabundle-root", "certificate"],
)
async def test_flipped_bit_is_a_refused_verdict_naming_the_check(
    api: AttestApi, offset: int, check: str
) -> None:
    flipped = bytearray(BETA)
    flipped[offset] ^= 0x01
    status, data = await api.verify(nitro(bytes(flipped)))
    assert status == 200, data
    assert data["verdict"] == "refused"
    assert data["failed_check"] == check
    assert "measurements" not in data  # a refused document's contents are not shown
    assert "signature_and_chain" not in data
    check_schema("AttestationVerdict", data)
    [entry] = attest_events(api.data_dir)
    assert (entry["verdict"], entry["check"]) == ("refused", check)
    assert "measurements" not in entry


async def test_outside_the_window_is_refused(api: AttestApi) -> None:
    status, data = await api.verify(nitro(at="2022-10-14T10:00:00Z"))
    assert status == 200
    assert data["verdict"] == "refused"
    assert data["failed_check"] in ("window", "chain")


async def test_default_time_is_now_and_the_real_sample_has_expired(api: AttestApi) -> None:
    body = nitro()
    del body["at"]
    status, data = await api.verify(body)
    assert status == 200
    assert data["verified_at"] == NOW.isoformat()
    assert data["verdict"] == "refused"


async def test_debug_document_needs_allow_debug(api: AttestApi) -> None:
    status, data = await api.verify(nitro(GA, GA_AT))
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "debug")
    status, data = await api.verify(nitro(GA, GA_AT, allow_debug=True))
    assert (status, data["verdict"], data["debug"]) == (200, "verified", True)


async def test_the_platform_chooses_the_verifier_not_the_evidence(api: AttestApi) -> None:
    status, data = await api.verify({**nitro(), "platform": "sev-snp"})
    assert (status, data["verdict"], data["platform"]) == (200, "refused", "sev-snp")


async def test_nonce_binding(api: AttestApi) -> None:
    status, data = await api.verify(nitro())
    nonce = data["nonce"]
    status, data = await api.verify(nitro(expect_nonce=nonce.upper()))
    assert (status, data["verdict"]) == (200, "verified")
    wrong = ("00" if nonce[:2] != "00" else "01") + nonce[2:]
    status, data = await api.verify(nitro(expect_nonce=wrong))
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "nonce")
    status, data = await api.verify(nitro(expect_public_key="00" * 32))
    assert (data["verdict"], data["failed_check"]) == ("refused", "public_key")


async def test_measurement_policy(api: AttestApi) -> None:
    status, data = await api.verify(nitro(measurements={"pcr0": ["00" * 48, BETA_PCR0.upper()]}))
    assert (status, data["verdict"]) == (200, "verified")
    status, data = await api.verify(nitro(measurements={"pcr0": ["00" * 48]}))
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "measurement")
    status, data = await api.verify(nitro(measurements={"pcr31": [BETA_PCR0]}))
    assert (data["verdict"], data["failed_check"]) == ("refused", "measurement")


@SERIAL_ZERO
async def test_sev_snp_report(api: AttestApi) -> None:
    body = {"platform": "sev-snp", "evidence": b64(snp()), "at": "2024-06-01T00:00:00Z"}
    status, data = await api.verify(body)
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "debug")
    good = "0102030405" + "00" * 59
    status, data = await api.verify({**body, "allow_debug": True, "expect_report_data": good})
    assert (status, data["verdict"]) == (200, "verified"), data
    assert "measurement" in data["measurements"]
    status, data = await api.verify({**body, "allow_debug": True, "expect_report_data": "ff" * 64})
    assert (data["verdict"], data["failed_check"]) == ("refused", "report_data")


async def test_tdx_and_sgx_quotes(api: AttestApi) -> None:
    at = "2025-07-01T00:00:00Z"
    status, data = await api.verify({"platform": "tdx", "evidence": b64(dcap("tdx")), "at": at})
    assert (status, data["verdict"], data["tcb_status"]) == (200, "verified", "UpToDate"), data
    assert "mrtd" in data["measurements"]
    sgx = {"platform": "sgx", "evidence": b64(dcap("sgx")), "at": at}
    status, data = await api.verify(sgx)
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "tcb")
    status, data = await api.verify({**sgx, "accepted_tcb": ["ConfigurationAndSWHardeningNeeded"]})
    assert (status, data["verdict"]) == (200, "verified"), data


async def test_sim_evidence_only_when_the_config_allows_it(api: AttestApi) -> None:
    key = load_or_create_key(api.data_dir)
    evidence = sign_evidence(key, SimReport(measurement=b"\x07" * 48), now=NOW)
    body = {"platform": "sim", "evidence": b64(evidence)}
    status, data = await api.verify(body)
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "platform")
    api.sim.key = key.public_key()
    status, data = await api.verify(body)
    assert (status, data["verdict"]) == (200, "verified"), data
    assert data["measurements"] == {"measurement": "07" * 48}
    # Another development key's evidence is refused even when sim is allowed.
    other = load_or_create_key(api.data_dir / "other")
    forged = sign_evidence(other, SimReport(measurement=b"\x07" * 48), now=NOW)
    status, data = await api.verify({**body, "evidence": b64(forged)})
    assert (data["verdict"], data["failed_check"]) == ("refused", "signature")


# --- malformed requests, authentication, audit ---


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"evidence": "not base64!"}, "evidence"),
        ({"evidence": b64(BETA).rstrip("=") + "A"}, "evidence"),  # padding removed: not one spelling
        ({"evidence": base64.urlsafe_b64encode(b"\xfb\xff" * 9).decode()}, "evidence"),
        ({"evidence": b64(BETA)[:-4] + " " + b64(BETA)[-4:]}, "evidence"),
        ({"expect_nonce": "abc"}, "expect_nonce"),
        ({"expect_report_data": "zz"}, "expect_report_data"),
        ({"expect_public_key": "00" * 513}, "expect_public_key"),
        ({"at": "yesterday"}, "at"),
        ({"at": "2022-10-13T10:00:00"}, "at"),  # no offset
        ({"at": "2022-13-13T10:00:00Z"}, "at"),
        ({"allow_debug": "true"}, "allow_debug"),
        ({"platform": "tpm"}, "platform"),
        ({"measurements": {"pcr0": []}}, "measurements"),
        ({"measurements": {"PCR0": [BETA_PCR0]}}, "measurements"),
        ({"accepted_tcb": ["Up To Date"]}, "accepted_tcb"),
    ],
    ids=[
        "b64-chars", "b64-unpadded", "b64-urlsafe", "b64-space", "nonce-odd", "report-data-hex",
        "public-key-long", "at-words", "at-no-offset", "at-month", "debug-string", "platform",
        "measurements-empty", "measurements-name", "tcb",
    ],
)  # fmt: skip
async def test_malformed_body_is_400_naming_the_field(
    api: AttestApi, change: dict[str, object], field_name: str
) -> None:
    status, data = await api.verify({**nitro(), **change})
    assert status == 400, data
    assert data["error"] == "bad_request"
    assert f"'{field_name}'" in data["message"]
    assert attest_events(api.data_dir) == []


async def test_missing_unknown_and_non_json_bodies(api: AttestApi) -> None:
    status, data = await api.verify({"platform": "nitro"})
    assert (status, data["message"]) == (400, "admin: body field 'evidence' is required")
    check_schema("Error", data)
    status, data = await api.verify({**nitro(), "evidence_url": "x"})
    assert (status, data["message"]) == (400, "admin: the body has an unknown field")
    resp = await api.client.post(
        VERIFY.path,
        headers={"Authorization": f"Bearer {api.keys['auditor']}", "Content-Type": "text/plain"},
        data=json.dumps(nitro()),
    )
    assert resp.status == 415


async def test_body_limit(api: AttestApi) -> None:
    status, data = await api.verify(nitro(evidence=b"\x00" * MAX_BODY))
    assert (status, data["error"]) == (413, "payload_too_large")
    # The largest real evidence (TDX quote + collateral) fits comfortably.
    assert len(json.dumps({"platform": "tdx", "evidence": b64(dcap("tdx"))})) < MAX_BODY // 4


async def test_no_key_is_401_and_audited(api: AttestApi) -> None:
    status, data = await api.verify(nitro(), role="")
    assert (status, data["error"]) == (401, "unauthorized")
    refused = [f for e, f in events(api.data_dir) if e == "admin.auth_failed"]
    assert refused[0]["operation"] == "verifyAttestation"
    assert attest_events(api.data_dir) == []


def test_every_role_may_verify() -> None:
    # Verifying changes nothing and reveals only what the caller sent: auditors
    # (and every stronger role) may do it, so no admin key gets 403 here; the
    # 403 path of guarded() is exercised by the session routes' tests.
    assert VERIFY.role is Role.AUDITOR
    assert all(Role(r).allows(VERIFY.role) for r in ROLES)


async def test_a_verdict_that_cannot_be_audited_is_not_given(
    audit_log: AuditLog, data_dir: Path
) -> None:
    async for api in _serve(FailingAudit(audit_log), data_dir):
        status, data = await api.verify(nitro())
        assert (status, data["error"]) == (503, "audit_unavailable")
        assert "verdict" not in data


async def test_answers_are_not_cached(api: AttestApi) -> None:
    resp = await api.client.post(
        VERIFY.path, headers={"Authorization": f"Bearer {api.keys['auditor']}"}, json=nitro()
    )
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Request-ID"]


async def test_an_unreadable_sim_key_refuses_sim_evidence(api: AttestApi) -> None:
    def unreadable() -> Ed25519PublicKey | None:
        raise ConfigError("tee.sim_key: cannot read /somewhere (gone)")

    api.sim_switch_to(unreadable)
    key = load_or_create_key(api.data_dir)
    evidence = sign_evidence(key, SimReport(measurement=b"\x07" * 48), now=NOW)
    status, data = await api.verify({"platform": "sim", "evidence": b64(evidence)})
    assert (status, data["verdict"], data["failed_check"]) == (200, "refused", "platform")
    assert "somewhere" not in json.dumps(data)


def test_the_sim_key_comes_from_the_tee_section_only_when_allowed(tmp_path: Path) -> None:
    def tee(**extra: object) -> TeeConfig:
        return TeeConfig.model_validate(
            {
                "kms": {"url": "http://127.0.0.1:1", "credential_file": "kms.credential"},
                "workers": [{"id": "tee-1", "address": "unix:/w.sock"}],
                **extra,
            }
        )

    assert simulated_key(None, tmp_path) is None
    assert simulated_key(tee(), tmp_path) is None  # not allowed: the file is not even read
    with pytest.raises(ConfigError, match=r"tee\.sim_key: cannot read"):
        simulated_key(tee(insecure_simulated_tee=True), tmp_path)
    key = load_or_create_key(tmp_path)
    found = simulated_key(tee(insecure_simulated_tee=True), tmp_path)
    assert found is not None
    assert found.public_bytes_raw() == key.public_key().public_bytes_raw()
