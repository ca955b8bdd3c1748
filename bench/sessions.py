"""Session benchmark: ``.venv/bin/python -m bench.sessions [--quick]`` (from the repo root).

Measures what gateway-owned sessions cost per request: tokengate forwarding
``GET /healthz`` of the demo backend on a pass-through route, then on a route
with ``auth: {}`` (bearer access token verified, revocation checked in the
session store, request signed with the identity JWT and RFC 9421), 1 and 2
workers, memory, SQLite and Redis stores, all in one run with the same backend
and wrk settings. Goal of the issue: authenticated + signed >= 0.8x pass-through.

Also measures the revocation check in-process (``SessionStore.is_revoked``):
round trips per check (Redis goal: at most one pipelined round trip) and the
median latency. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from bench import targets
from bench.gateway import Endpoint, Plan, measure, prepare_workdir
from bench.loadgen import WrkSettings
from bench.procs import BenchError, Servers, free_port, signals_as_interrupt
from bench.report import NOISY_PCT, Report, environment, vars_of
from proxy.sessions.factory import open_session_store
from proxy.sessions.model import SessionGrant
from proxy.sessions.store import StoreSettings

GOAL = 0.8  # authenticated + signed rps / pass-through rps, same workers, same run
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ACCESS_COOKIE = "tg-at"


@dataclass(frozen=True, slots=True)
class Variant:
    """One gateway configuration: worker count, whether /healthz needs a session, the store."""

    workers: int
    auth: bool
    store: str  # memory | sqlite | redis

    @property
    def name(self) -> str:
        if not self.auth:
            return f"passthrough-{self.workers}w"
        return f"auth-{self.workers}w-{self.store}"


VARIANTS = (
    Variant(1, False, "memory"),
    Variant(1, True, "memory"),
    Variant(1, True, "redis"),
    Variant(2, False, "redis"),
    Variant(2, True, "sqlite"),
    Variant(2, True, "redis"),
)

ROUTES = """\
routes:
  - name: login
    match: {{methods: [POST], path: /login}}
    allow_unauthenticated: true
  - name: healthz
    match: {{path: /healthz}}
{rule}
"""

SESSIONS_YAML = """\
sessions:
  access_lifetime: 1h
  cookies: {{access: {cookie}, refresh: tg-rt, secure: false}}
  login: {{route: login, secret_file: "{secret}"}}
  store: {{uri: "{uri}", key_prefix: "{prefix}"}}
"""


def store_uri(store: str, redis_url: str) -> str:
    return {"memory": "memory:", "sqlite": "sqlite:sessions/sessions.db", "redis": redis_url}[store]


def gateway(
    v: Variant, workdir: Path, upstream_port: int, secret: Path, *, redis_url: str, prefix: str
) -> targets.Launch:
    """``tokengate serve`` for ``v``: the same config for every variant but the /healthz rule.

    Pass-through variants also configure sessions (memory with 1 worker, Redis
    with 2), so that the only difference measured is the route's rule.
    """
    d = workdir / v.name
    (d / "policies").mkdir(parents=True, exist_ok=True)
    (d / "data").mkdir(exist_ok=True)
    port, admin = free_port(), free_port()
    (d / "gateway.yaml").write_text(
        targets.GATEWAY_YAML.format(
            port=port,
            admin=admin,
            workers=v.workers,
            data=d / "data",
            access_log="false",
            level="warning",
            upstream=upstream_port,
        )
        + SESSIONS_YAML.format(
            cookie=ACCESS_COOKIE, secret=secret, uri=store_uri(v.store, redis_url), prefix=prefix
        )
    )
    rule = "    auth: {}" if v.auth else "    allow_unauthenticated: true"
    (d / "policies" / "routes.yaml").write_text(ROUTES.format(rule=rule))
    what = "bearer session + signed" if v.auth else "passthrough"
    return targets.Launch(
        name=v.name,
        argv=[
            str(targets.VENV_BIN / "tokengate"),
            "serve",
            "--config",
            str(d / "gateway.yaml"),
            "--workers",
            str(v.workers),
        ],
        base_url=f"http://127.0.0.1:{port}",
        ready=[f"http://127.0.0.1:{admin}/.tokengate/healthz"],
        label=f"tokengate, {what}, {v.workers} worker(s), {v.store} store, access log off",
    )


def mint_token(base_url: str) -> str:
    """Log alice in through the gateway (the backend asserts it); her access token."""
    req = urllib.request.Request(
        f"{base_url}/login",
        data=json.dumps({"username": "alice", "password": "alice"}).encode(),
        headers={"Content-Type": "application/json", "Origin": base_url},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
        cookies = resp.headers.get_all("Set-Cookie") or []
    for c in cookies:
        name, _, rest = c.partition("=")
        if name.strip() == ACCESS_COOKIE:
            return str(rest.split(";", 1)[0])
    raise BenchError("tokengate: login answered without an access token cookie")


def drop_keys(redis_url: str, prefix: str) -> int:
    """Delete every Redis key under ``prefix``; how many."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


class StoreServers(Servers):
    """Servers whose CPU accounting also counts a local Redis server while a Redis variant runs.

    Redis does work for the gateway on those variants; without this its CPU
    would show up as foreign load. It also counts whatever else uses that Redis
    meanwhile, so the foreign figure is a lower bound on those rows.
    """

    def __init__(self, logdir: Path) -> None:
        super().__init__(logdir)
        self.extra: list[int] = []

    def session_ids(self) -> list[int]:
        return [*super().session_ids(), *self.extra]


def redis_session(redis_url: str) -> int | None:
    """Session id of the Redis server at ``redis_url`` if it runs on this machine, else None."""
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("server")
        pid = int(info["process_id"])
        return os.getsid(pid) if Path(f"/proc/{pid}/comm").read_text().startswith("redis") else None
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def run(args: argparse.Namespace, workdir: Path, report: Report) -> None:
    """Start the backend (login assertions on, signature checks off), then each variant."""
    plan = Plan.from_args(args)
    raw_dir = prepare_workdir(workdir)
    secret = workdir / "login.secret"
    secret.write_text(secrets.token_urlsafe(32))
    secret.chmod(0o600)
    redis_sid = redis_session(args.redis_url)
    servers = StoreServers(workdir / "logs")
    with servers:
        backend = targets.demo_backend(free_port(), workdir / "demo-data")
        argv = [*backend.argv, "--tokengate-login-secret-file", str(secret)]
        servers.start("demo-backend", argv, ready=backend.ready)
        upstream = int(backend.base_url.rsplit(":", 1)[1])
        for v in VARIANTS:
            if args.variants and v.name not in args.variants:
                continue
            print(f"- {v.name}", flush=True)
            servers.extra = [redis_sid] if v.store == "redis" and redis_sid else []
            launch = gateway(
                v, workdir, upstream, secret, redis_url=args.redis_url, prefix=args.prefix
            )
            try:
                server = servers.start(launch.name, launch.argv, ready=launch.ready)
            except BenchError as e:
                report.add_failed_target(launch, ["healthz"], str(e))
                print(f"  {v.name}: FAILED to start\n{e}", flush=True)
                continue
            try:
                headers = (
                    {"Authorization": f"Bearer {mint_token(launch.base_url)}"} if v.auth else {}
                )
                measure(
                    launch,
                    [Endpoint("healthz", "/healthz", headers)],
                    plan,
                    report,
                    raw_dir,
                    servers,
                    server,
                )
            except (BenchError, OSError) as e:
                report.add_failed_target(launch, ["healthz"], f"{v.name}: {e}")
            finally:
                servers.stop(server)


@dataclass(frozen=True, slots=True)
class CheckCost:
    """The revocation check on one store: round trips made and latency per call."""

    store: str
    checks: int
    round_trips: int
    median_us: float
    p99_us: float
    cpu_us: float  # CPU of this process per check (client-side work: encode, parse, event loop)

    @property
    def per_check(self) -> float:
        return self.round_trips / self.checks

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "round_trips_per_check": self.per_check}


async def revocation_cost(uri: str, *, checks: int, data_dir: Path, prefix: str) -> CheckCost:
    """Round trips per ``is_revoked`` call on a live session and its latency, on a real store.

    Also checks the answers: live reads live every time, revoked reads revoked.
    """
    store = open_session_store(
        uri, data_dir=data_dir, workers=1, settings=StoreSettings(key_prefix=prefix)
    )
    await store.open()
    try:
        made = await store.create(SessionGrant(sub="bench-revocation"))
        sid, sub = made.session.sid, made.session.sub
        issued = time.time()
        for _ in range(50):  # warm the connection pool
            await store.is_revoked(sid, sub, issued)
        before, cpu0 = store.round_trips, time.process_time_ns()
        times: list[int] = []
        for _ in range(checks):
            t0 = time.perf_counter_ns()
            revoked = await store.is_revoked(sid, sub, issued)
            times.append(time.perf_counter_ns() - t0)
            if revoked:
                raise BenchError(f"{store.description}: a live session reads as revoked")
        trips, cpu_ns = store.round_trips - before, time.process_time_ns() - cpu0
        await store.revoke(sid)
        if not await store.is_revoked(sid, sub, issued):
            raise BenchError(f"{store.description}: a revoked session reads as live")
    finally:
        await store.close()
    times.sort()
    return CheckCost(
        store=uri.split(":", 1)[0],
        checks=checks,
        round_trips=trips,
        median_us=statistics.median(times) / 1e3,
        p99_us=times[int(0.99 * (checks - 1))] / 1e3,
        cpu_us=cpu_ns / checks / 1e3,
    )


def revocation_all(args: argparse.Namespace, workdir: Path) -> list[CheckCost]:
    """The check on memory:, SQLite and Redis (the one the goal is about), one after another."""
    return [
        asyncio.run(revocation_cost(uri, checks=args.checks, data_dir=workdir, prefix=args.prefix))
        for uri in ("memory:", "sqlite:revocation.db", args.redis_url)
    ]


def ratios(report: Report) -> list[dict[str, object]]:
    """Each authenticated variant against the pass-through with the same worker count."""
    out: list[dict[str, object]] = []
    for v in VARIANTS:
        if not v.auth:
            continue
        base = f"passthrough-{v.workers}w"
        if not any(m.target == v.name for m in report.measurements):
            continue
        r = report.ratio(v.name, base, "healthz")
        noisy = any(m.noisy for m in report.measurements if m.target in (v.name, base))
        verdict = (
            "not measured"
            if r is None
            else ("met" if r >= GOAL else "MISSED") + (" (noisy)" if noisy else "")
        )
        out.append(
            {
                "target": v.name,
                "versus": base,
                "ratio": r,
                "floor": GOAL,
                "met": None if r is None else r >= GOAL,
                "verdict": verdict,
            }
        )
    return out


def render(report: Report, checks: list[CheckCost]) -> str:
    lines = [
        f"{report.settings.describe()}, warm-up {report.warmup_s}s, loopback, GET /healthz, "
        "access log off, variants one after another",
        "",
        f"{'variant':<18}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'other cpu':>11}",
    ]
    for m in report.measurements:
        if m.result is None:
            lines.append(
                f"{m.target:<18} FAILED: {(m.error or '?').strip().splitlines()[-1][:120]}"
            )
            continue
        res = m.result
        other = "-" if m.cpu is None else f"{m.cpu.foreign_pct:.0f}%" + "!" * m.noisy
        row = f"{m.target:<18}{res.rps:>10.0f}{res.p50_ms:>10.2f}{res.p99_ms:>10.2f}{other:>11}"
        if not res.clean:
            row += f"  (errors: {res.socket_errors} socket, {res.non_2xx_3xx} non-2xx)"
        lines.append(row)
    lines += ["", f"goal: authenticated + signed >= {GOAL}x pass-through (rps, same workers)"]
    for g in ratios(report):
        r = g["ratio"]
        shown = f"{r:.2f}x" if isinstance(r, float) else "-"
        lines.append(f"  {g['target']:<16} / {g['versus']:<15} {shown:>6}  {g['verdict']}")
    if report.noisy():
        lines.append(f"! other processes used more than {NOISY_PCT:.0f}% of a core: rerun quiet")
    if checks:
        lines += ["", "revocation check in-process (is_revoked on a live session)"]
        for c in checks:
            lines.append(
                f"  {c.store:<7} {c.per_check:.2f} round trips/check  median {c.median_us:.1f} us"
                f"  p99 {c.p99_us:.1f} us  cpu {c.cpu_us:.1f} us  ({c.checks} checks)"
            )
    return "\n".join(lines)


def write(report: Report, checks: list[CheckCost], outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"sessions-{report.started.strftime('%Y%m%dT%H%M%SZ')}.json"
    doc = {
        "benchmark": "sessions",
        "started": report.started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "interrupted": report.interrupted,
        "wrk": {**vars_of(report.settings), "warmup_s": report.warmup_s},
        "noisy_threshold_pct_of_one_core": NOISY_PCT,
        "environment": environment(),
        "results": [m.as_dict() for m in report.measurements],
        "goals": ratios(report),
        "revocation_check": [c.as_dict() for c in checks],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.sessions", description=__doc__.splitlines()[0]
    )
    p.add_argument("--duration", type=int, default=10, help="seconds measured per variant")
    p.add_argument("--warmup", type=int, default=None, help="seconds of warm-up (2)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (2 cores: keep 1)")
    p.add_argument("--quick", action="store_true", help="3 s per variant, 1 s warm-up, no retries")
    p.add_argument("--variants", type=lambda s: s.split(","), default=None, help="comma list")
    p.add_argument("--retries", type=int, default=None, help="repeats of a noisy run (1)")
    p.add_argument("--quiet-wait", type=float, default=None, help="longest wait for quiet (10 s)")
    p.add_argument("--checks", type=int, default=2000, help="is_revoked calls per store")
    p.add_argument("--redis-url", default=REDIS_URL, help="Redis for the redis variants")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    p.add_argument("--out", type=Path, default=targets.REPO / "bench" / "results")
    args = p.parse_args(argv)
    known = [v.name for v in VARIANTS]
    if unknown := set(args.variants or ()) - set(known):
        p.error(f"unknown variants {sorted(unknown)}; known: {', '.join(known)}")
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
    args.prefix = f"tokengate-bench-{secrets.token_hex(6)}:"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Every variant, then the in-process revocation check; 1 if anything failed."""
    args = parse_args(argv)
    signals_as_interrupt()
    settings = WrkSettings(args.threads, args.connections, args.duration)
    report = Report(settings, warmup_s=args.warmup, retries=args.retries)
    workdir = Path(tempfile.mkdtemp(prefix="tokengate-bench-sessions-"))
    print(f"{settings.describe()} per variant, {args.warmup}s warm-up; work dir {workdir}")
    checks: list[CheckCost] = []
    try:
        run(args, workdir, report)
        checks = revocation_all(args, workdir)
    except KeyboardInterrupt:
        report.interrupted = True
        print("interrupted: every server stopped; partial results follow")
    except BenchError as e:
        report.interrupted = True
        print(f"aborted: {e}")
    finally:
        drop_keys(args.redis_url, args.prefix)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(render(report, checks))
    print(f"\nJSON: {write(report, checks, args.out)}")
    redis_ok = all(c.per_check <= 1 for c in checks if c.store == "redis")
    return 1 if report.interrupted or report.failures() or not redis_ok else 0


if __name__ == "__main__":
    raise SystemExit(main())
