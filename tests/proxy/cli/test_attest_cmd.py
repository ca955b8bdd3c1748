"""``tokengate attest verify``: real evidence of every platform, verdicts and exit codes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxy.cli import _register, cli
from tee.dcap import encode_evidence as dcap_evidence
from tee.sev_snp import encode_evidence as snp_evidence
from tee.sim import SimReport, load_or_create_key, sign_evidence
from tests.tee.test_sev_snp import SERIAL_ZERO_MESSAGE

V = Path(__file__).resolve().parents[2] / "tee" / "vectors"
SERIAL_ZERO = pytest.mark.filterwarnings(
    f"ignore:{re.escape(SERIAL_ZERO_MESSAGE)}:cryptography.utils.CryptographyDeprecationWarning"
)


def run(*args: str) -> tuple[int, str]:
    _register()
    result = CliRunner().invoke(cli, ["attest", "verify", *args])
    return result.exit_code, result.stdout


def test_nitro_document_verified_in_its_window() -> None:
    doc = V / "nitro" / "evervault_beta_2022-10-13.cose"
    code, out = run("--evidence", str(doc), "--platform", "nitro", "--at", "2022-10-13T10:00:00Z")
    assert code == 0, out
    assert "VERIFIED" in out
    assert "pcr0" in out


def test_nitro_document_refused_outside_its_window() -> None:
    doc = V / "nitro" / "evervault_beta_2022-10-13.cose"
    code, out = run(
        "--evidence", str(doc), "--platform", "nitro", "--at", "2022-10-14T10:00:00Z", "--json"
    )
    assert code == 1
    [verdict] = json.loads(out)
    assert verdict["verdict"] == "refused"
    assert verdict["failed_check"] in ("window", "chain")


def test_debug_document_needs_allow_debug() -> None:
    doc = str(V / "nitro" / "evervault_ga_2023-09-18.cose")
    at = "2023-09-18T16:00:00Z"
    code, out = run("--evidence", doc, "--platform", "nitro", "--at", at, "--json")
    assert code == 1
    assert json.loads(out)[0]["failed_check"] == "debug"
    code, out = run("--evidence", doc, "--platform", "nitro", "--at", at, "--allow-debug")
    assert code == 0, out


def test_the_platform_chooses_the_verifier_not_the_evidence() -> None:
    doc = str(V / "nitro" / "evervault_beta_2022-10-13.cose")
    code, out = run("--evidence", doc, "--platform", "sev-snp", "--at", "2022-10-13T10:00:00Z")
    assert code == 1
    assert "REFUSED" in out


@SERIAL_ZERO
def test_sev_snp_report(tmp_path: Path) -> None:
    snp = V / "sev-snp"
    evidence = tmp_path / "snp.bin"
    evidence.write_bytes(
        snp_evidence(
            (snp / "gosevguest_milan_report.bin").read_bytes(),
            (snp / "gosevguest_milan_vcek.der").read_bytes(),
        )
    )
    args = ("--evidence", str(evidence), "--platform", "sev-snp", "--at", "2024-06-01T00:00:00Z")
    code, out = run(*args, "--json")
    assert code == 1
    assert json.loads(out)[0]["failed_check"] == "debug"
    code, out = run(*args, "--allow-debug", "--expect-report-data", "0102030405" + "00" * 59)
    assert code == 0, out
    code, _ = run(*args, "--allow-debug", "--expect-report-data", "ff" * 64)
    assert code == 1


def test_tdx_quote_batch(tmp_path: Path) -> None:
    d = V / "tdx-sgx"
    tdx = tmp_path / "tdx.json"
    tdx.write_bytes(
        dcap_evidence(
            (d / "dcapqvl_tdx_quote_v4.bin").read_bytes(),
            json.loads((d / "dcapqvl_tdx_quote_collateral.json").read_text()),
        )
    )
    at = ("--at", "2025-07-01T00:00:00Z")
    code, out = run("--evidence", str(tdx), "--platform", "tdx", *at, "--json")
    assert code == 0, out
    assert json.loads(out)[0]["tcb_status"] == "UpToDate"
    # Batch: one good, one refused -> exit 1, both reported.
    bad = tmp_path / "bad.json"
    bad.write_bytes(tdx.read_bytes().replace(b'"quote":"', b'"quote":"A'))
    code, out = run("--evidence", str(tdx), "--evidence", str(bad), "--platform", "tdx", *at)
    assert code == 1
    assert out.count("VERIFIED") == 1
    assert out.count("REFUSED") == 1
    assert f"attest: 2 evidence files: 1 verified, 1 refused: {bad} (format)" in out
    code, out = run("--evidence", str(tdx), "--evidence", str(bad), "--platform", "tdx", *at,
                    "--json")  # fmt: skip
    assert code == 1
    assert [v["verdict"] for v in json.loads(out)] == ["verified", "refused"]


def test_sim_needs_its_data_dir_and_verifies(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    now = datetime.now(UTC)
    evidence = tmp_path / "sim.txt"
    evidence.write_bytes(sign_evidence(key, SimReport(measurement=b"\x01" * 32), now=now))
    code, _ = run("--evidence", str(evidence), "--platform", "sim")
    assert code == 2  # usage: the development key is needed
    code, out = run(
        "--evidence", str(evidence), "--platform", "sim", "--sim-data-dir", str(tmp_path)
    )
    assert code == 0, out
    assert "simulated" in out
    # Another data dir holds no key: refused as usage, and no key is created there.
    empty = tmp_path / "empty"
    code, _ = run("--evidence", str(evidence), "--platform", "sim", "--sim-data-dir", str(empty))
    assert code == 2
    assert not empty.exists()


def test_evidence_needs_a_platform() -> None:
    doc = str(V / "nitro" / "evervault_beta_2022-10-13.cose")
    code, _ = run("--evidence", doc)
    assert code == 2
    code, _ = run()
    assert code == 2


@pytest.mark.parametrize(
    "flags",
    [
        ("--platform", "nitro"),
        ("--at", "2022-10-13T10:00:00Z"),
        ("--allow-debug",),
        ("--accept-tcb", "OutOfDate"),
        ("--expect-nonce", "00"),
        ("--expect-report-data", "00"),
        ("--expect-public-key", "00"),
        ("--evidence", str(V / "nitro" / "evervault_beta_2022-10-13.cose")),
        ("--all",),
    ],
    ids=["platform", "at", "debug", "tcb", "nonce", "report-data", "key", "evidence", "all"],
)
def test_deployment_mode_refuses_policy_flags(flags: tuple[str, ...]) -> None:
    # The KMS registry states platform and policy; a flag must not quietly loosen it.
    code, _ = run("--deployment", "tee-1", *flags)
    assert code == 2
