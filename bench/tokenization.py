"""Tokenization benchmark: ``.venv/bin/python -m bench.tokenization [--quick] [--backends ...]``.

Per vault backend (SQLite, Redis, PostgreSQL, S3 on a private moto server), in
one run with the same wrk settings: tokenize a JSON body with 1, 10 and 100
sensitive fields, and detokenize a list response holding 100 real tokens, each
against a pass-through gateway on the same request. Reports added p50/p99 and
rps; goals: 10-field tokenize adds <= 2 ms p50 on SQLite, 100-token detokenize
adds <= 5 ms p50 on Redis. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import targets
from bench import tokenize_config as cfg
from bench.gateway import Endpoint, Plan, measure
from bench.loadgen import WrkSettings
from bench.procs import BenchError, Server, free_port, http_status, signals_as_interrupt
from bench.report import NOISY_PCT, Report, environment, vars_of
from bench.sessions import REDIS_URL, StoreServers, mint_token
from bench.tokenize_report import goal_checks, render, rows, target_name
from bench.tokenize_stores import BACKENDS, Prepared, fsync_latency_ms, prepared

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SETTLE_S = 180.0  # longest wait for a gateway to work off a previous run's backlog


@dataclass(frozen=True, slots=True)
class Site:
    """What every gateway of the run shares: the work dir, the bench backend, the login secret."""

    workdir: Path
    upstream: int
    secret: Path


class Phase:
    """One wrk setting every target is measured with: its plan, report and raw output dir."""

    def __init__(self, name: str, plan: Plan, raw_dir: Path) -> None:
        self.name, self.plan, self.raw_dir = name, plan, raw_dir
        self.report = Report(plan.wrk, warmup_s=plan.warmup_s, retries=plan.retries)


def launch(kind: str, workers: int, backend: str, site: Site, p: Prepared) -> targets.Launch:
    """``tokengate serve`` of one kind (passthrough | fields), with its own data dir."""
    name = target_name(kind, workers, backend)
    d = site.workdir / name
    (d / "policies").mkdir(parents=True)
    (d / "data").mkdir()
    port, admin = free_port(), free_port()
    (d / "gateway.yaml").write_text(
        cfg.gateway_yaml(
            port=port,
            admin=admin,
            workers=workers,
            data=str(d / "data"),
            upstream=site.upstream,
            secret=str(site.secret),
            vault=p.vault,
        )
    )
    (d / "policies" / "routes.yaml").write_text(cfg.policy_yaml(kind))
    return targets.Launch(
        name=name,
        argv=[str(targets.VENV_BIN / "tokengate"), "serve", "--config", str(d / "gateway.yaml")],
        base_url=f"http://127.0.0.1:{port}",
        ready=[f"http://127.0.0.1:{admin}/.tokengate/healthz"],
        label=f"tokengate {kind}, {workers} worker(s), vault {backend}, access log off",
    )


def _call(url: str, bearer: str, body: bytes | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return bytes(resp.read())


def seed(gateway: targets.Launch, bearer: str, backend_url: str) -> None:
    """Tokenize the 100-item list through the gateway once; check the backend holds tokens
    and that the gateway reveals the values to alice, so detokenize-100 reads real records.
    """
    _call(f"{gateway.base_url}/list", bearer, cfg.seed_body())
    values = cfg.seed_values()
    held = json.loads(urllib.request.urlopen(f"{backend_url}/list", timeout=10).read())
    tokens = [item["ssn"] for item in held["items"]]
    if len(tokens) != len(values) or any(t in values for t in tokens):
        raise BenchError(f"{gateway.name}: the backend's list does not hold 100 tokens")
    shown = json.loads(_call(f"{gateway.base_url}/list", bearer))
    if [item["ssn"] for item in shown["items"]] != values:
        raise BenchError(f"{gateway.name}: GET /list did not reveal the seeded values")


def measure_pair(
    pair: list[tuple[targets.Launch, Server, list[Endpoint]]],
    names: Sequence[str],
    phases: Sequence[Phase],
    servers: StoreServers,
) -> None:
    """Each endpoint on pass-through then field gateway, back to back, in every phase.

    Before each measurement one request is sent with a long timeout: a slow store
    (S3) may still be working off the requests wrk left behind at the end of the
    previous run, and the probe of ``measure`` would give up on it.
    """
    for name in names:
        for phase in phases:
            for gw, server, eps in pair:
                ep = [e for e in eps if e.name == name]
                http_status(
                    gw.base_url + ep[0].path,
                    headers=ep[0].headers,
                    timeout=SETTLE_S,
                    method=ep[0].method,
                    data=ep[0].body,
                )
                measure(gw, ep, phase.plan, phase.report, phase.raw_dir, servers, server)


def run_gateways(
    site: Site,
    backend: str,
    workers: int,
    names: Sequence[str],
    prep: Prepared,
    servers: StoreServers,
    phases: Sequence[Phase],
) -> None:
    """Start the pass-through and the field gateway, log in on each, seed, measure, stop."""
    started: list[Server] = []
    pair: list[tuple[targets.Launch, Server, list[Endpoint]]] = []
    try:
        for kind in cfg.KINDS:
            gw = launch(kind, workers, backend, site, prep)
            print(f"- {gw.name}", flush=True)
            server = servers.start(gw.name, gw.argv, ready=gw.ready, env=dict(prep.vault.env))
            started.append(server)
            bearer = mint_token(gw.base_url)
            if kind == "fields" and any(n.startswith("detokenize") for n in names):
                seed(gw, bearer, f"http://127.0.0.1:{site.upstream}")
            pair.append((gw, server, cfg.endpoints(bearer)))
        measure_pair(pair, names, phases, servers)
    except (BenchError, OSError) as e:
        for phase in phases:
            for kind in cfg.KINDS:
                gw_name = target_name(kind, workers, backend)
                lnch = targets.Launch(gw_name, [], "", [], f"tokengate {kind}")
                phase.report.add_failed_target(lnch, list(names), f"{gw_name}: {e}")
        print(f"  {backend} {workers}w: FAILED\n{e}", flush=True)
    finally:
        for s in started:
            servers.stop(s)


def run(args: argparse.Namespace, workdir: Path, phases: Sequence[Phase], notes: list[str]) -> None:
    """Start the bench backend, then per vault backend the gateways and their measurements."""
    secret = workdir / "login.secret"
    secret.write_text(secrets.token_urlsafe(32))
    secret.chmod(0o600)
    all_names = [ep.name for ep in cfg.endpoints("x")]
    servers = StoreServers(workdir / "logs")
    with servers:
        port = free_port()
        argv = [sys.executable, "-m", "bench.token_backend", "--port", str(port)]
        servers.start(
            "bench-backend",
            [*argv, "--secret-file", str(secret)],
            ready=[f"http://127.0.0.1:{port}/list"],
            cwd=targets.REPO,
        )
        site = Site(workdir, port, secret)
        for backend in args.backends:
            tag = secrets.token_hex(5)
            with prepared(
                backend,
                redis_url=args.redis_url,
                postgres_url=args.postgres_url,
                servers=servers,
                tag=tag,
            ) as prep:
                notes.extend(prep.notes)
                servers.extra = prep.server_sessions
                run_gateways(site, backend, 1, all_names, prep, servers, phases)
                if args.two_workers:
                    run_gateways(site, backend, 2, ["tokenize-10"], prep, servers, phases)
                servers.extra = []


def write(phases: Sequence[Phase], notes: list[str], outdir: Path, started: datetime) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"tokenize-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    latency, load = phases[0].report, phases[1].report
    found = rows(latency, load)
    doc = {
        "benchmark": "tokenize",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "interrupted": latency.interrupted,
        "phases": {
            p.name: {**vars_of(p.report.settings), "warmup_s": p.report.warmup_s} for p in phases
        },
        "noisy_threshold_pct_of_one_core": NOISY_PCT,
        "environment": environment(),
        "rows": [r.as_dict() for r in found],
        "goals": goal_checks(found),
        "measurements": {p.name: [m.as_dict() for m in p.report.measurements] for p in phases},
        "notes": notes,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.tokenization", description=__doc__.splitlines()[0]
    )
    p.add_argument("--backends", type=lambda s: s.split(","), default=list(BACKENDS))
    p.add_argument("--duration", type=int, default=10, help="seconds measured per target")
    p.add_argument("--warmup", type=int, default=None, help="seconds of warm-up (2)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections, rps phase")
    p.add_argument(
        "--latency-connections", type=int, default=1, help="wrk connections, latency phase"
    )
    p.add_argument("--threads", type=int, default=1, help="wrk threads (2 cores: keep 1)")
    p.add_argument("--quick", action="store_true", help="3 s per target, 1 s warm-up, no retries")
    p.add_argument("--retries", type=int, default=None, help="repeats of a noisy run (1)")
    p.add_argument("--quiet-wait", type=float, default=None, help="longest wait for quiet (10 s)")
    p.add_argument(
        "--no-two-workers",
        dest="two_workers",
        action="store_false",
        help="skip tokenize-10 on 2 workers",
    )
    p.add_argument("--redis-url", default=REDIS_URL, help="Redis for the redis backend")
    p.add_argument("--postgres-url", default=POSTGRES_URL, help="database for postgres")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    p.add_argument("--out", type=Path, default=targets.REPO / "bench" / "results")
    args = p.parse_args(argv)
    if unknown := set(args.backends) - set(BACKENDS):
        p.error(f"unknown backends {sorted(unknown)}; known: {', '.join(BACKENDS)}")
    if args.quick:
        args.duration = 3
    defaults = (
        {"warmup": 1, "retries": 0, "quiet_wait": 5.0}
        if args.quick
        else {"warmup": 2, "retries": 1, "quiet_wait": 10.0}
    )
    for name, default in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def phases_of(args: argparse.Namespace, workdir: Path) -> list[Phase]:
    """The latency phase (few connections) and the rps phase (many), same duration."""
    out = []
    for name, conns in (("latency", args.latency_connections), ("load", args.connections)):
        raw = workdir / "wrk" / name
        raw.mkdir(parents=True)
        wrk = WrkSettings(args.threads, conns, args.duration)
        out.append(Phase(name, Plan(wrk, args.warmup, args.retries, args.quiet_wait), raw))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Every backend; the table, the goals, the JSON; 1 if anything failed."""
    args = parse_args(argv)
    signals_as_interrupt()
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="tokengate-bench-tokenize-"))
    (workdir / "logs").mkdir()
    phases = phases_of(args, workdir)
    print(f"backends {','.join(args.backends)}; work dir {workdir}", flush=True)
    p50, worst = fsync_latency_ms(workdir)
    notes = [f"fsync of 4 KiB in the work dir: median {p50:.2f} ms, worst {worst:.2f} ms of 50"]
    try:
        run(args, workdir, phases, notes)
    except KeyboardInterrupt:
        phases[0].report.interrupted = True
        print("interrupted: every server stopped; partial results follow")
    except BenchError as e:
        phases[0].report.interrupted = True
        print(f"aborted: {e}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    latency, load = phases[0].report, phases[1].report
    print()
    print(render(latency, load, notes))
    print(f"\nJSON: {write(phases, notes, args.out, started)}")
    failed = latency.failures() or load.failures() or latency.interrupted
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
