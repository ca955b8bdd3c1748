"""The tokenization benchmark's pieces: wrk scripts, configs, the backend, added latency, goals.

No benchmark runs here: the configs go through the gateway's strict loader,
the bench backend through aiohttp's test client, and the arithmetic through
canned measurements.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bench import token_backend
from bench import tokenize_config as cfg
from bench.cpu import CpuShare
from bench.loadgen import WrkResult, WrkSettings, lua_string, request_script
from bench.report import Measurement, Report
from bench.targets import Launch
from bench.tokenize_report import goal_checks, render, rows, target_name
from bench.tokenize_stores import fsync_latency_ms
from proxy.settings import load_settings


def _lua_unquote(literal: str) -> bytes:
    """Read back the subset of Lua string syntax that lua_string writes."""
    assert literal[0] == literal[-1] == '"'
    body = literal[1:-1]
    return bytes(
        int(m.group(1)) if m.group(1) else ord(m.group(2))
        for m in re.finditer(r"\\(\d{3})|(.)", body, re.DOTALL)
    )


@pytest.mark.parametrize(
    "data",
    [b'{"a":"x\\"y"}', b"line\nbreak\t\x00\xff", '{"name":"Zoë"}'.encode(), b"\\123", b""],
)
def test_lua_string_round_trips_and_escapes_what_lua_would_read(data: bytes) -> None:
    literal = lua_string(data)
    assert _lua_unquote(literal) == data
    inner = literal[1:-1]
    # Only printable ASCII, no bare quote, every backslash opens a 3-digit escape.
    assert (inner.isascii() and inner.isprintable()) or inner == ""
    assert re.fullmatch(r'(?:[^"\\]|\\\d{3})*', inner)


def test_request_script_sets_method_and_body_and_wrk_gets_it() -> None:
    script = request_script("POST", b'{"ssn":"1"}')
    assert script.splitlines() == [
        'wrk.method = "POST"',
        'wrk.body = "{\\034ssn\\034:\\0341\\034}"',
    ]
    assert request_script("GET") == 'wrk.method = "GET"\n'
    argv = WrkSettings(1, 4, 2).argv("http://h/x", {"A": "b"}, script=Path("/s.lua"))
    assert argv[argv.index("-s") + 1] == "/s.lua"
    assert "-s" not in WrkSettings(1, 4, 2).argv("http://h/x", {})


@pytest.mark.parametrize("kind", cfg.KINDS)
@pytest.mark.parametrize(
    "vault",
    [
        cfg.VaultSection("sqlite:vault/vault.db"),
        cfg.VaultSection(
            "redis://127.0.0.1:6379/0", prefix="tg-bench-x:vault:", accept_volatile=True
        ),
    ],
)
def test_gateway_configs_pass_strict_validation(
    tmp_path: Path, kind: str, vault: cfg.VaultSection
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "routes.yaml").write_text(cfg.policy_yaml(kind))
    secret = tmp_path / "login.secret"
    secret.write_text("s" * 40)
    secret.chmod(0o600)
    gateway = tmp_path / "gateway.yaml"
    gateway.write_text(
        cfg.gateway_yaml(
            port=1,
            admin=2,
            workers=2,
            data=str(tmp_path / "d"),
            upstream=3,
            secret=str(secret),
            vault=vault,
        )
    )
    settings = load_settings(gateway)
    assert settings.gateway.vault.url == vault.url
    assert settings.gateway.vault.accept_volatile is vault.accept_volatile
    assert settings.gateway.logging.access_log is False
    names = [r.name for r in settings.routes]
    assert names == (
        ["login", "ingest", "list"]
        if kind == "passthrough"
        else ["login", "ingest", "seed", "list"]
    )
    with_rules = {r.name for r in settings.routes if r.request or r.response}
    assert with_rules == (set() if kind == "passthrough" else {"ingest", "seed", "list"})


def test_policy_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown gateway kind"):
        cfg.policy_yaml("tokenize-only")


def test_bodies_hold_n_distinct_values_and_endpoints_carry_them() -> None:
    for n in cfg.TOKENIZE_SIZES:
        items = json.loads(cfg.items_body(n))["items"]
        assert len(items) == n == len({i["ssn"] for i in items})
    seeded = [i["ssn"] for i in json.loads(cfg.seed_body())["items"]]
    assert seeded == cfg.seed_values()
    assert set(seeded).isdisjoint(i["ssn"] for i in json.loads(cfg.items_body(100))["items"])
    eps = {e.name: e for e in cfg.endpoints("T")}
    assert list(eps) == ["tokenize-1", "tokenize-10", "tokenize-100", "detokenize-100"]
    assert eps["tokenize-10"].body == cfg.items_body(10)
    assert eps["detokenize-100"].plain_get
    assert not eps["tokenize-1"].plain_get
    assert all(e.headers["Authorization"] == "Bearer T" for e in eps.values())


async def test_backend_keeps_the_list_answers_ingest_and_asserts_alice_only() -> None:
    secret = b"k" * 32
    async with TestClient(TestServer(token_backend.make_app(secret))) as client:
        r = await client.post("/ingest", data=cfg.items_body(10))
        assert (r.status, await r.read()) == (200, token_backend.OK)
        await client.post("/list", data=b'{"items":[{"ssn":"tok_x"}]}')
        for _ in range(2):
            r = await client.get("/list")
            assert await r.read() == b'{"items":[{"ssn":"tok_x"}]}'
        r = await client.post(
            "/login", json={"username": "alice"}, headers={"Tokengate-Login-Nonce": "n1"}
        )
        header, payload, mac = r.headers["Tokengate-Login"].split(".")
        expected = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        assert base64.urlsafe_b64decode(mac + "==") == expected
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        assert (claims["sub"], claims["nonce"], claims["aud"]) == ("alice", "n1", "tokengate")
        r = await client.post(
            "/login", json={"username": "mallory"}, headers={"Tokengate-Login-Nonce": "n1"}
        )
        assert r.status == 401
        assert "Tokengate-Login" not in r.headers


def _result(p50: float, p99: float, rps: float, *, errors: int = 0) -> WrkResult:
    return WrkResult(rps, p50, p99, 100, 1.0, 0, errors)


def _report(entries: list[tuple[str, str, WrkResult, float]]) -> Report:
    report = Report(WrkSettings(1, 1, 3), warmup_s=1)
    for target, endpoint, result, foreign in entries:
        launch = Launch(target, [], "", [], target)
        report.add(Measurement.of(launch, endpoint, result, CpuShare(foreign + 50, 50)))
    return report


FIELDS, BASE = target_name("fields", 1, "sqlite"), target_name("passthrough", 1, "sqlite")


def test_rows_pair_each_field_route_with_its_passthrough() -> None:
    latency = _report(
        [
            (BASE, "tokenize-10", _result(1.0, 3.0, 900), 0),
            (FIELDS, "tokenize-10", _result(2.5, 7.0, 400), 0),
        ]
    )
    load = _report(
        [
            (BASE, "tokenize-10", _result(20, 40, 3000), 0),
            (FIELDS, "tokenize-10", _result(60, 90, 1000), 0),
        ]
    )
    (row,) = rows(latency, load)
    assert (row.backend, row.workers, row.endpoint) == ("sqlite", 1, "tokenize-10")
    assert (row.added_p50_ms, row.added_p99_ms) == (1.5, 4.0)
    assert (row.rps, row.base_rps) == (1000, 3000)
    assert row.rps_ratio == pytest.approx(1 / 3)
    assert not row.noisy
    assert row.error is None
    (goal, redis_goal) = goal_checks([row])
    assert (goal["met"], goal["verdict"]) == (True, "met")
    assert redis_goal["verdict"] == "not measured"
    assert "tokenize-10" in render(latency, load, ["a note"])


def test_a_goal_is_missed_above_its_limit_and_flagged_noisy() -> None:
    latency = _report(
        [
            (BASE, "tokenize-10", _result(1.0, 3.0, 900), 40),
            (FIELDS, "tokenize-10", _result(3.5, 7.0, 400), 0),
        ]
    )
    (row,) = rows(latency, _report([]))
    assert row.noisy
    assert row.rps is None
    (goal, _) = goal_checks([row])
    assert (goal["met"], goal["verdict"]) == (False, "MISSED (noisy)")


def test_a_side_with_errors_gives_no_added_latency() -> None:
    latency = _report(
        [
            (BASE, "detokenize-100", _result(1.0, 3.0, 900), 0),
            (FIELDS, "detokenize-100", _result(0.5, 1.0, 900, errors=7), 0),
        ]
    )
    (row,) = rows(latency, _report([]))
    assert row.added_p50_ms is None
    assert row.error is not None
    assert FIELDS in row.error


def test_fsync_probe_measures_and_cleans_up(tmp_path: Path) -> None:
    median, worst = fsync_latency_ms(tmp_path, count=3)
    assert 0 < median <= worst
    assert list(tmp_path.iterdir()) == []
