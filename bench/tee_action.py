"""The ``tee`` action: round trip and jobs/s, 1 and 2 workers (``python -m bench.tee_action``).

Real processes for everything outside the gateway: a KMS service (``tokengate
kms serve``: SQLite registry and broker, file audit log, simulated TEEs
allowed) and two sim workers (``tokengate tee worker`` with the demo bundle
``examples/tee_jobs`` on loopback TCP), both TEEs registered with the bundle's
measurement. In this process, the gateway side exactly as a gateway worker
builds it (:func:`proxy.teesetup.open_tee` from a ``tee:`` section: the KMS
client, the worker clients, the attested pool, the job runner) and the ``tee``
action configured as ``{job: card_check, accept: {valid: true}}``.

One message = one ``Tee.apply`` call on a batch of ``--batch`` card numbers:
one KMS grant (HTTP, SQLite write, audit entry), one worker call (which asks
the KMS to release the key: HTTP, SQLite, audit, HPKE), the job, and the
sealed answer. Per pool size (1 worker, then 2):

- ``round trip``: ``--calls`` messages one after the other: p50 and p99;
- ``load``: ``--concurrency`` messages in flight for ``--duration`` seconds:
  messages (jobs) per second, p50 and p99 under that load.

Both are split over ``--rounds`` rounds with the pool sizes interleaved round
by round (a fresh pool each round, attested before it is timed), so load
from other processes lands on both sizes alike.

Every answer is checked (each value comes back as itself, accepted), so a
failing pool cannot post a fast time. Under load, the CPU of each part is
shown in percent of one core: this process (the gateway side), the KMS and
the workers together; the foreign-load column is the CPU of processes other
than the benchmark's (bench.cpu).
Numbers are per machine: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import yaml

from audit.events import schema_for
from bench import cpu
from bench.procs import Servers, free_port, signals_as_interrupt
from kms.auth import credential_digest, new_credential
from kms_client.audit_port import AuditValue
from plugins.base import ActionContext, FieldValue, KeyedHasher, RateLimiter, Subject
from plugins.tee import Tee
from proxy.cli.demo_tee import demo_bundle
from proxy.teeconfig import TeeConfig
from proxy.teesetup import open_tee
from tee.broker_client import BrokerClient
from tee.bundle import measure
from tee.jobs import JobRunner
from tee.sim import KEY_FILE, load_or_create_key
from vault.api import TokenVault

REPO = Path(__file__).resolve().parent.parent
TOKENGATE = str(Path(sys.executable).with_name("tokengate"))
CARDS = ("4111111111111111", "4012888888881881", "5555555555554444", "4000056655665556")


class SchemaAudit:
    """Checks the pool's audit events against their schema and drops them."""

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        schema_for(event).validate(fields)


class Unused:
    """Stands for the vault, keyring and limiter, which ``tee`` without ``class`` never calls."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"bench: the tee action used {name} unexpectedly")


@dataclass(frozen=True, slots=True)
class Row:
    """One pool size's figures."""

    workers: int
    calls: int
    rt_p50_ms: float
    rt_p99_ms: float
    load_messages: int
    jobs_per_s: float
    load_p50_ms: float
    load_p99_ms: float
    gateway_cpu_pct: float  # this process: the pool, the runner and the action
    kms_cpu_pct: float
    workers_cpu_pct: float  # both worker processes together
    foreign_pct: float


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def start_kms(servers: Servers, work: Path, shared: Path) -> tuple[str, str, str]:
    """The KMS URL, an admin credential and a gateway credential."""
    admin, gateway = new_credential(), new_credential()
    credentials = {
        "credentials": [
            {"id": "bench-admin", "roles": ["admin"], "sha256": credential_digest(admin)},
            {"id": "bench-gateway", "roles": ["gateway"], "sha256": credential_digest(gateway)},
        ]
    }
    (work / "kms-credentials.yaml").write_text(yaml.safe_dump(credentials))
    port = free_port()
    config = {
        "data_dir": str(work / "kms"),
        "listen": {"host": "127.0.0.1", "port": port},
        "credentials": str(work / "kms-credentials.yaml"),
        "insecure_simulated_tee": True,
        "sim_key": str(shared / KEY_FILE),
        "audit": {"checkpoint_every": 100_000},
    }
    (work / "kms.yaml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    servers.start(
        "kms",
        [TOKENGATE, "kms", "serve", "--config", str(work / "kms.yaml")],
        ready=[f"{url}/readyz"],
    )
    return url, admin, gateway


async def register(url: str, admin: str, tee_ids: Sequence[str], bundle: Path) -> None:
    client = BrokerClient(url, credential=admin, timeout=10)
    try:
        for tee_id in tee_ids:
            await client.register(
                {
                    "id": tee_id,
                    "platform": "sim",
                    "measurements": {"measurement": [measure(bundle).hex()]},
                    "tenants": ["bench"],
                    "jobs": ["card_check"],
                }
            )
    finally:
        await client.close()


def start_worker(servers: Servers, tee_id: str, kms_url: str, shared: Path, bundle: Path) -> str:
    """The worker's address."""
    port = free_port()
    servers.start(
        tee_id,
        [
            *(TOKENGATE, "tee", "worker", "--bundle", str(bundle), "--tee-id", tee_id),
            *("--listen", f"127.0.0.1:{port}", "--kms", kms_url),
            *("--data-dir", str(shared), "--insecure-simulated-tee", "--log-level", "warning"),
        ],
        ready=[f"http://127.0.0.1:{port}/v1/info"],
    )
    return f"127.0.0.1:{port}"


def context(runner: JobRunner, n: int) -> ActionContext:
    unused = Unused()
    return ActionContext(
        route="bench",
        rule="request[0]",
        direction="request",
        subject=Subject(),
        vault=cast(TokenVault, unused),
        keys=cast(KeyedHasher, unused),
        audit=SchemaAudit(),
        limiter=cast(RateLimiter, unused),
        now=time.time(),
        request_id=f"bench-{n}",
        tenant="bench",
        tee=runner,
    )


async def one(action: Tee, runner: JobRunner, n: int, batch: int) -> float:
    """One message through the action; its wall time (s). Every value must come back accepted."""
    values = [FieldValue(CARDS[(n + i) % len(CARDS)], f"$.cards[{i}]") for i in range(batch)]
    t0 = time.perf_counter()
    out = await action.apply(values, context(runner, n))
    elapsed = time.perf_counter() - t0
    if [r.value for r in out] != [v.value for v in values]:
        raise SystemExit("bench: the tee action did not accept the cards")
    return elapsed


@dataclass(slots=True)
class Tally:
    """One pool size's raw measurements, accumulated over rounds."""

    workers: int
    rt: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    load_wall: float = 0.0
    busy: list[float] = field(default_factory=list)  # foreign load per round
    cpu_s: dict[str, float] = field(default_factory=dict)  # under load: gateway, kms, workers

    def row(self) -> Row:
        return Row(
            workers=self.workers,
            calls=len(self.rt),
            rt_p50_ms=round(1000 * statistics.median(self.rt), 2),
            rt_p99_ms=round(1000 * percentile(self.rt, 99), 2),
            load_messages=len(self.load),
            jobs_per_s=round(len(self.load) / self.load_wall, 1),
            load_p50_ms=round(1000 * statistics.median(self.load), 2),
            load_p99_ms=round(1000 * percentile(self.load, 99), 2),
            gateway_cpu_pct=self._pct("gateway"),
            kms_cpu_pct=self._pct("kms"),
            workers_cpu_pct=self._pct("workers"),
            foreign_pct=round(statistics.mean(self.busy), 1),
        )

    def _pct(self, who: str) -> float:
        return round(100 * self.cpu_s.get(who, 0.0) / self.load_wall, 1)


def cpu_by_part(kms: int, workers: Sequence[int]) -> dict[str, float]:
    """CPU seconds so far of this process (the gateway side), the KMS and the workers."""
    return {
        "gateway": time.process_time(),
        "kms": cpu.sessions_cpu_s([kms]),
        "workers": cpu.sessions_cpu_s(workers),
    }


async def measure_round(
    config: TeeConfig, shared: Path, args: argparse.Namespace, sessions: list[int], tally: Tally
) -> None:
    """One round for one pool size: sequential calls, then load; added to ``tally``."""
    action = Tee()
    action.configure({"job": "card_check", "accept": {"valid": True}})
    async with open_tee(config, data_dir=shared, audit=SchemaAudit()) as tee:
        if tee is None or len(tee.pool.members()) != len(config.workers):
            raise SystemExit("bench: not every worker was attested")
        runner = tee.runner
        for n in range(args.warmup):
            await one(action, runner, n, args.batch)
        before = cpu.sample(sessions)
        calls = max(1, args.calls // args.rounds)
        tally.rt += [await one(action, runner, n, args.batch) for n in range(calls)]
        deadline = time.monotonic() + args.duration / args.rounds
        counter = iter(range(10**9))

        async def client() -> None:
            while time.monotonic() < deadline:
                tally.load.append(await one(action, runner, next(counter), args.batch))

        kms, *workers = sessions
        parts = cpu_by_part(kms, workers)
        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
        tally.load_wall += time.monotonic() - started
        for who, used in cpu_by_part(kms, workers).items():
            tally.cpu_s[who] = tally.cpu_s.get(who, 0.0) + used - parts[who]
        tally.busy.append(cpu.share(before, cpu.sample(sessions)).foreign_pct)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.tee_action", description=__doc__.split("\n", 1)[0])
    p.add_argument("--calls", type=int, default=300, help="sequential messages per pool size")
    p.add_argument("--warmup", type=int, default=30, help="messages before measuring")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of load per pool size")
    p.add_argument("--concurrency", type=int, default=16, help="messages in flight under load")
    p.add_argument("--batch", type=int, default=1, help="card numbers per message")
    p.add_argument("--rounds", type=int, default=4, help="rounds, pool sizes interleaved")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each round, wait up to this long for other processes to use < 25%% of a core",
    )
    p.add_argument("--quick", action="store_true", help="100 calls, 3 s of load")
    p.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="JSON goes here")
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.duration, args.warmup, args.rounds = 100, 3.0, 10, 2
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signals_as_interrupt()
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="tokengate-bench-tee-"))
    shared = work / "shared"
    load_or_create_key(shared)
    bundle = demo_bundle()
    with Servers(work) as servers:
        kms_url, admin, gateway = start_kms(servers, work, shared)
        asyncio.run(register(kms_url, admin, ("tee-1", "tee-2"), bundle))
        addresses = [start_worker(servers, t, kms_url, shared, bundle) for t in ("tee-1", "tee-2")]
        credential = shared / "kms.credential"
        credential.write_text(gateway)
        credential.chmod(0o600)
        configs = [
            TeeConfig.model_validate(
                {
                    "kms": {"url": kms_url, "credential_file": str(credential)},
                    "workers": [
                        {"id": f"tee-{i + 1}", "address": a} for i, a in enumerate(addresses[:n])
                    ],
                    "insecure_simulated_tee": True,
                    "sim_key": str(shared / KEY_FILE),
                }
            )
            for n in (1, 2)
        ]
        tallies = [Tally(workers=len(c.workers)) for c in configs]
        for _ in range(args.rounds):  # interleaved: other load lands on both sizes alike
            for config, tally in zip(configs, tallies, strict=True):
                cpu.wait_quiet(servers.session_ids(), below_pct=25.0, max_wait_s=args.quiet_wait)
                asyncio.run(measure_round(config, shared, args, servers.session_ids(), tally))
        rows = [t.row() for t in tallies]
    print(
        f"tee action, batch {args.batch}, {args.concurrency} in flight under load, "
        f"{args.rounds} interleaved rounds"
    )
    print(
        "| workers | calls | rt p50 ms | rt p99 ms | load msgs | jobs/s | load p50 ms "
        "| load p99 ms | cpu % gateway | cpu % kms | cpu % workers | foreign % |"
    )
    print("| --- " * 12 + "|")
    for r in rows:
        print(
            f"| {r.workers} | {r.calls} | {r.rt_p50_ms} | {r.rt_p99_ms} | {r.load_messages} "
            f"| {r.jobs_per_s} | {r.load_p50_ms} | {r.load_p99_ms} | {r.gateway_cpu_pct} "
            f"| {r.kms_cpu_pct} | {r.workers_cpu_pct} | {r.foreign_pct} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"tee-{time.strftime('%Y%m%dT%H%M%S')}.json"
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    out.write_text(json.dumps({"args": settings, "rows": [asdict(r) for r in rows]}, indent=2))
    print(f"wrote {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
