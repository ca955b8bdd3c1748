"""``tokengate policy test``: a dry run of the field rules on sample messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxy.cli import _register, cli
from proxy.policypreview import parse_sample

ROOT = Path(__file__).resolve().parents[2]
SSN = "123-45-6789"
PAN = "4111 1111 1111 1111"
REQUEST = (
    "POST /api/users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\r\n"
    + json.dumps({"name": "A", "email": "a@x", "ssn": SSN, "card_number": PAN})
)
RESPONSE = "HTTP/1.1 201 Created\nContent-Type: application/json\n\n" + json.dumps(
    {"id": 1, "ssn": SSN, "card_number": PAN, "owner": "alice"}
)


def run(tmp_path: Path, request: str, response: str | None, *args: str) -> tuple[int, str]:
    (tmp_path / "req.http").write_text(request)
    argv = ["policy", "test", "--config", str(ROOT / "config" / "gateway.yaml")]
    argv += ["--request", str(tmp_path / "req.http")]
    if response is not None:
        (tmp_path / "resp.http").write_text(response)
        argv += ["--response", str(tmp_path / "resp.http")]
    _register()
    result = CliRunner().invoke(cli, [*argv, *args])
    return result.exit_code, result.stdout


def test_request_fields_become_tokens(tmp_path: Path) -> None:
    code, out = run(tmp_path, REQUEST, None, "--sub", "alice")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["route"] == "users-create"
    body = json.loads(doc["request"]["body"])
    assert body["ssn"] != SSN
    assert body["ssn"].endswith("6789")
    assert body["card_number"] != PAN
    assert body["name"] == "A"


def test_owner_sees_values(tmp_path: Path) -> None:
    code, out = run(tmp_path, REQUEST, RESPONSE, "--sub", "alice")
    assert code == 0, out
    doc = json.loads(out)
    body = json.loads(doc["response"]["body"])
    assert (body["ssn"], body["card_number"]) == (SSN, PAN)
    assert {d["decision"] for d in doc["decisions"]} == {"allow"}


def test_another_user_sees_masks(tmp_path: Path) -> None:
    code, out = run(tmp_path, REQUEST, RESPONSE, "--sub", "bob", "--owner", "alice")
    assert code == 0, out
    doc = json.loads(out)
    body = json.loads(doc["response"]["body"])
    assert body["ssn"] == "***-**-6789"
    assert body["card_number"] == "**** **** **** 1111"
    assert {d["decision"] for d in doc["decisions"]} == {"deny"}


def test_support_needs_fresh_mfa(tmp_path: Path) -> None:
    args = ("--sub", "carol", "--role", "support", "--owner", "alice")
    _, out = run(tmp_path, REQUEST, RESPONSE, *args)
    assert json.loads(json.loads(out)["response"]["body"])["ssn"] == "***-**-6789"
    _, out = run(tmp_path, REQUEST, RESPONSE, *args, "--mfa")
    assert json.loads(json.loads(out)["response"]["body"])["ssn"] == SSN


def test_a_refused_request_says_why(tmp_path: Path) -> None:
    bad = REQUEST.replace(SSN, "not an ssn")
    code, out = run(tmp_path, bad, None, "--sub", "alice")
    assert code == 1
    refused = json.loads(out)["refused"]
    assert refused["status"] == 400
    assert "request[0] $.ssn" in refused["message"]


def test_unmatched_request(tmp_path: Path) -> None:
    code, out = run(tmp_path, "DELETE /nowhere HTTP/1.1\n\n", None)
    assert code == 1
    assert json.loads(out)["refused"]["status"] in (404, 405)


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"GET / HTTP/1.1\nno colon here\n\n"])
def test_malformed_samples(raw: bytes) -> None:
    with pytest.raises(ValueError, match="sample:"):
        parse_sample(raw)
