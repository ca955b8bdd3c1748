"""Smoke tests of the benchmark harness pieces (the benchmarks themselves are not tests).

Quick by design: a canned wrk report, the route tables, the reference proxy
in-process, and one 1-second wrk run through real servers the harness starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench import cpu, gateway, route_matching, targets
from bench.loadgen import WrkSettings, parse_wrk, run_wrk
from bench.procs import BenchError, Servers, free_port, http_status
from bench.ref_proxy import make_app
from bench.report import Measurement, Report
from policy.routing import Router
from proxy.settings import load_settings

WRK_CLEAN = """\
Running 3s test @ http://127.0.0.1:18482/healthz
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.71ms    4.09ms 118.58ms   98.96%
    Req/Sec    11.74k   790.59    12.30k    90.00%
  Latency Distribution
     50%  533.00us
     75%    5.40ms
     90%    5.61ms
     99%    1.20s
  35020 requests in 3.00s, 14.69MB read
Requests/sec:  11666.85
Transfer/sec:      4.90MB
"""

WRK_ERRORS = WRK_CLEAN.replace(
    "Requests/sec:",
    "  Socket errors: connect 0, read 2, write 0, timeout 5\n"
    "  Non-2xx or 3xx responses: 12\nRequests/sec:",
)


def test_parse_wrk_reads_rps_and_percentiles_in_ms() -> None:
    r = parse_wrk(WRK_CLEAN)
    assert r.rps == 11666.85
    assert r.p50_ms == pytest.approx(0.533)
    assert r.p99_ms == 1200.0
    assert (r.requests, r.duration_s, r.clean) == (35020, 3.0, True)


def test_parse_wrk_flags_errors() -> None:
    r = parse_wrk(WRK_ERRORS)
    assert (r.socket_errors, r.non_2xx_3xx, r.clean) == (7, 12, False)


def test_parse_wrk_refuses_a_report_without_percentiles() -> None:
    with pytest.raises(ValueError, match="50%/99%"):
        parse_wrk(WRK_CLEAN.replace("     99%    1.20s\n", ""))


@pytest.mark.parametrize("size", route_matching.SIZES)
def test_route_tables_compile_and_probes_find_their_routes(size: int) -> None:
    routes = route_matching.build_routes(size)
    assert len(routes) == size
    route_matching.verify(Router.compile(routes), route_matching.probes(size))


def test_route_probe_verification_catches_a_wrong_expectation() -> None:
    router = Router.compile(route_matching.build_routes(10))
    wrong = route_matching.Probe("x", route_matching.HOST, "GET", "/app/page0", "page1")
    with pytest.raises(SystemExit, match="matched page0, not page1"):
        route_matching.verify(router, [wrong])


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    resp = web.json_response(
        {
            "headers": list(request.headers),
            "host": request.host,
            "body": body.decode(),
            "path": request.path_qs,
        }
    )
    resp.headers["Proxy-Authenticate"] = "Basic"
    resp.headers["X-End"] = "1"
    return resp


async def test_ref_proxy_streams_and_strips_hop_by_hop_only() -> None:
    upstream = web.Application()
    upstream.router.add_route("*", "/{tail:.*}", _echo)
    async with TestServer(upstream) as up_server:
        up_host = f"{up_server.host}:{up_server.port}"
        proxy = await make_app(str(up_server.make_url("/")))
        async with TestClient(TestServer(proxy)) as client:
            resp = await client.post(
                "/a/b?q=1",
                data=b"payload",
                headers={
                    "Connection": "keep-alive, X-Drop-Me",
                    "X-Drop-Me": "1",
                    "TE": "trailers",
                    "Proxy-Authorization": "Basic eA==",
                    "X-Keep": "1",
                },
            )
            assert resp.status == 200
            seen = await resp.json()
            assert "Proxy-Authenticate" not in resp.headers
            assert resp.headers["X-End"] == "1"
    sent = {h.lower() for h in seen["headers"]}
    assert {"x-drop-me", "te", "proxy-authorization"}.isdisjoint(sent)
    assert "x-keep" in sent
    assert (seen["body"], seen["path"]) == ("payload", "/a/b?q=1")
    assert seen["host"] == up_host


async def test_ref_proxy_answers_502_when_the_upstream_is_down() -> None:
    proxy = await make_app(f"http://127.0.0.1:{free_port()}")
    async with TestClient(TestServer(proxy)) as client:
        resp = await client.get("/healthz")
        assert resp.status == 502


def test_servers_measure_through_ref_proxy_and_nginx_then_stop(tmp_path: Path) -> None:
    backend = targets.demo_backend(free_port(), tmp_path / "demo")
    upstream_port = int(backend.base_url.rsplit(":", 1)[1])
    with Servers(tmp_path) as servers:
        servers.start("backend", backend.argv, ready=backend.ready)
        started = []
        for launch in (
            targets.ref_proxy(free_port(), upstream_port),
            targets.nginx(free_port(), upstream_port, tmp_path),
        ):
            started.append(servers.start(launch.name, launch.argv, ready=launch.ready))
            result, _ = run_wrk(WrkSettings(1, 4, 1), launch.base_url + "/healthz", {})
            assert result.requests > 0
            assert result.clean
    assert all(not s.alive() for s in started)
    assert http_status(backend.base_url + "/healthz", timeout=0.5) == 0


def test_measure_records_the_cpu_the_target_spent_per_request(tmp_path: Path) -> None:
    settings = WrkSettings(1, 4, 1)
    report = Report(settings, warmup_s=0)
    backend = targets.demo_backend(free_port(), tmp_path / "demo")
    upstream_port = int(backend.base_url.rsplit(":", 1)[1])
    with Servers(tmp_path) as servers:
        servers.start("backend", backend.argv, ready=backend.ready)
        launch = targets.ref_proxy(free_port(), upstream_port)
        proxy = servers.start(launch.name, launch.argv, ready=launch.ready)
        plan = gateway.Plan(settings, warmup_s=0, retries=0, quiet_wait_s=0.0)
        endpoint = gateway.Endpoint("healthz", "/healthz", {})
        gateway.measure(launch, [endpoint], plan, report, tmp_path, servers, proxy)
    (m,) = report.measurements
    assert m.result is not None
    assert m.result.requests > 0
    # A proxy spends tens to hundreds of microseconds of CPU per request: never
    # nothing, never milliseconds (only the window of the wrk run is counted).
    assert m.cpu_us_per_request is not None
    assert 1 < m.cpu_us_per_request < 5_000
    assert m.as_dict()["target_cpu_us_per_request"] == round(m.cpu_us_per_request, 1)
    header, row = report.render().split("endpoint healthz\n", 1)[1].splitlines()[:2]
    assert "cpu us/req" in header
    assert f"{m.cpu_us_per_request:.0f}" in row.split()


def test_cpu_per_request_is_unknown_without_the_targets_cpu() -> None:
    result = parse_wrk(WRK_CLEAN)
    launch = targets.ref_proxy(1, 2)
    load = cpu.CpuShare(100.0, 100.0)
    assert Measurement.of(launch, "healthz", result, load).cpu_us_per_request is None
    m = Measurement.of(launch, "healthz", result, load, target_cpu_s=3.502)
    assert m.cpu_us_per_request == pytest.approx(100.0)  # 3.502 s over 35,020 requests


def test_servers_report_a_server_that_exits(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "raise SystemExit(3)"]
    ready = [f"http://127.0.0.1:{free_port()}/"]
    with Servers(tmp_path) as servers, pytest.raises(BenchError, match="exited with 3"):
        servers.start("broken", argv, ready=ready)


@pytest.mark.parametrize("access_log", [True, False])
def test_tokengate_bench_config_passes_strict_validation(tmp_path: Path, access_log: bool) -> None:
    launch = targets.tokengate(
        free_port(), free_port(), 8000, tmp_path, workers=2, access_log=access_log
    )
    settings = load_settings(Path(launch.argv[launch.argv.index("--config") + 1]))
    assert settings.gateway.logging.access_log is access_log
    assert settings.gateway.logging.level == ("info" if access_log else "warning")
    assert settings.gateway.workers == 2
    assert [r.name for r in settings.routes] == ["all"]


def test_cpu_share_is_machine_busy_time_minus_the_benchmarks_own() -> None:
    before = cpu.CpuSample(wall_s=10.0, busy_s=100.0, ours_s=50.0)
    after = cpu.CpuSample(wall_s=12.0, busy_s=103.0, ours_s=52.0)
    load = cpu.share(before, after)
    assert (load.busy_pct, load.ours_pct, load.foreign_pct) == (150.0, 100.0, 50.0)


def test_cpu_share_never_reports_negative_foreign_load() -> None:
    # /proc/stat and per-process counters tick separately: ours can read above busy.
    load = cpu.share(cpu.CpuSample(0.0, 10.0, 10.0), cpu.CpuSample(1.0, 10.5, 10.9))
    assert load.foreign_pct == 0.0


def test_cpu_counts_the_sessions_it_is_given(tmp_path: Path) -> None:
    with Servers(tmp_path) as servers:
        backend = targets.demo_backend(free_port(), tmp_path / "demo")
        server = servers.start("backend", backend.argv, ready=backend.ready)
        assert servers.session_ids() == [server.proc.pid]
        assert cpu.sessions_cpu_s(servers.session_ids()) > 0  # it has imported aiohttp
        assert cpu.sessions_cpu_s([]) == 0
    assert cpu.machine_busy_s() > 0


def test_no_bench_script_shadows_a_project_package_or_stdlib_module() -> None:
    """Scripts run by path put bench/ first on sys.path: a bench/tee.py would hide ``tee``."""
    from tests.test_packaging import TOP_LEVEL

    bench_dir = Path(__file__).resolve().parents[2] / "bench"
    names = {p.stem for p in bench_dir.glob("*.py")} - {"__init__"}
    taken = set(TOP_LEVEL) | {"config", "examples", "tee_jobs"} | set(sys.stdlib_module_names)
    assert sorted(names & taken) == []
