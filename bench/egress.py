"""Egress relay benchmark: ``.venv/bin/python -m bench.egress [--quick] [--duration S]``.

One run, side by side, against the same HTTPS third party (aiohttp on uvloop,
its own process, a trustme certificate): POST a JSON body holding 10 values

- ``direct``: straight to the third party (the ceiling);
- ``relay-plain``: through ``tokengate egress serve`` on a route without
  rules (CONNECT once per connection, TLS intercepted, the body relayed);
- ``mitmdump-plain``: through a stock ``mitmdump`` (regular mode, ``-q``,
  private confdir) doing nothing: mitmproxy's own cost, the relay's floor;
- ``relay-10-fields``: through the relay on a route whose rule detokenizes
  the 10 values (``$.fields[*]``): the body holds 10 tokens, the third party
  gets 10 plaintexts; one vault batch, the release gate, the rate limiter and
  one audited ``egress.detokenize`` entry per call.

The relay runs as users run it: SQLite vault, SQLite rate limits, file audit
log, JSON logs at info. wrk cannot speak through a forward proxy, so the load
comes from this process: ``--concurrency`` aiohttp (uvloop) workers on
keep-alive connections for ``--duration`` seconds after a warm-up. The client
shares the machine's cores with the relay and the third party, so compare the
ratios of one run, never absolute numbers across runs. ``other cpu`` is the
CPU used by processes outside the benchmark (percent of one core); above 15%
the row is flagged. Results: a table on stdout and JSON in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import trustme
import uvloop

from bench import cpu
from bench.procs import BenchError, Servers, free_port, signals_as_interrupt
from bench.report import NOISY_PCT, environment
from bench.targets import REPO

FIELDS = 10
VALUES = [f"{4000000000000000 + i * 7919:016d}" for i in range(FIELDS)]
CLIENT, ROLE = "bench", "bench"


@dataclass(frozen=True, slots=True)
class Result:
    """One scenario: throughput and latency percentiles of the measured window."""

    scenario: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    other_cpu_pct: float


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    url: str
    body: bytes
    via_relay: bool
    proxy: str = "relay"


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy the client goes through: its URL, its CA, the relay client secret."""

    url: str
    ca_pem: str
    secret: str | None


# -- the third party ----------------------------------------------------------------------


def third_party_main(port: int, cert: str, key: str) -> None:
    """``python -m bench.egress --third-party PORT CERT KEY``: an HTTPS JSON echo of sizes."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"ok": True, "bytes": len(body)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        ssl_context=ctx,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


# -- set-up -------------------------------------------------------------------------------


def write_config(work: Path, *, party_port: int, relay_port: int, digest: str) -> Path:
    """gateway.yaml, a class, two egress routes; everything else at its defaults."""
    (work / "policies").mkdir()
    (work / "policies" / "classes.yaml").write_text("classes:\n  secret: {format: opaque}\n")
    (work / "egress").mkdir()
    (work / "egress" / "bench.yaml").write_text(
        textwrap.dedent(
            f"""\
            egress:
              - name: plain
                match: {{host: localhost, path: /plain}}
                port: {party_port}
              - name: fields
                match: {{host: localhost, path: /fields}}
                port: {party_port}
                release: {{classes: [secret], max_values: {FIELDS}}}
                rate_limit: {{values: 1000000000, window: 1h}}
                request:
                  - field: "$.fields[*]"
                    action: detokenize
                    class: secret
                    allow: {{roles: [{ROLE}]}}
            """
        )
    )
    config = work / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            data_dir: data
            upstreams: {{app: {{url: "http://127.0.0.1:9"}}}}
            egress:
              listen: {{host: 127.0.0.1, port: {relay_port}}}
              upstream_ca: upstream-ca.pem
              clients:
                - {{name: {CLIENT}, roles: [{ROLE}], sha256: {digest}}}
            """
        )
    )
    return config


async def make_tokens(config: Path) -> list[str]:
    """Tokenize the values in the relay's vault before it starts (same files, same keys)."""
    from kms_client.keysetup import audited_keys
    from proxy.cli.gatewayfile import load_gateway_file
    from vault.api import TokenizeItem
    from vault.engine import Vault
    from vault.opening import open_store

    gf = load_gateway_file(config)
    spec = gf.classes["secret"].spec
    async with audited_keys(
        keys=gf.gateway.keys,
        audit=gf.gateway.audit,
        data_dir=gf.data_dir,
        production=False,
        background=False,
    ) as (_, keys):
        store = await open_store(gf.vault, data_dir=gf.data_dir)
        try:
            vault = Vault(store, keys, untagged_index_version=1)
            made = await vault.tokenize([TokenizeItem(v, spec, None, "") for v in VALUES])
        finally:
            await store.close()
    return [str(t) for t in made]


def relay_ca(config: Path) -> str:
    """The relay's CA certificate, as ``tokengate egress ca`` prints it (made if absent)."""
    return _run_cli("egress", "ca", "--config", str(config))


def _run_cli(*args: str) -> str:
    import subprocess

    out = subprocess.run(
        [str(Path(sys.executable).parent / "tokengate"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if out.returncode != 0:
        raise BenchError(f"tokengate {' '.join(args)}: {out.stderr.strip()[-500:]}")
    return out.stdout


def wait_port(port: int, server_name: str, servers: Servers, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    servers.stop_all()
    raise BenchError(f"{server_name}: not listening on {port} after {timeout:.0f}s")


# -- load ---------------------------------------------------------------------------------


async def measure(
    scenario: Scenario,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    relay: str,
    proxy_auth: str | None,
    relay_ssl: ssl.SSLContext,
    party_ssl: ssl.SSLContext,
    sessions: list[int],
) -> Result:
    """Keep ``concurrency`` callers busy; count the calls that end inside the window."""
    latencies: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}
    tls = relay_ssl if scenario.via_relay else party_ssl
    proxy = relay if scenario.via_relay else None
    proxy_headers = (
        {"Proxy-Authorization": proxy_auth} if scenario.via_relay and proxy_auth else None
    )
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.monotonic()
        window_start, window_end = start + warmup, start + warmup + duration
        before: cpu.CpuSample | None = None

        async def caller() -> None:
            nonlocal errors, before
            while (started := time.monotonic()) < window_end:
                if before is None and started >= window_start:
                    before = cpu.sample(sessions)
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        scenario.url,
                        data=scenario.body,
                        headers=headers,
                        ssl=tls,
                        proxy=proxy,
                        proxy_headers=proxy_headers,
                    ) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, OSError):
                    ok = False
                done = time.monotonic()
                if window_start <= started and done <= window_end:
                    if ok:
                        latencies.append((time.perf_counter() - t0) * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        after = cpu.sample(sessions)
    foreign = cpu.share(before, after).foreign_pct if before is not None else 0.0
    latencies.sort()
    return Result(
        scenario=scenario.name,
        requests=len(latencies),
        errors=errors,
        rps=len(latencies) / duration,
        p50_ms=_pct(latencies, 0.50),
        p99_ms=_pct(latencies, 0.99),
        other_cpu_pct=foreign,
    )


def _pct(sorted_ms: Sequence[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


# -- report -------------------------------------------------------------------------------


def ratios(results: dict[str, Result]) -> dict[str, float]:
    """Throughput ratios within the run: each relay scenario against direct, and each other."""

    def r(a: str, b: str) -> float:
        return results[a].rps / results[b].rps if results[b].rps else float("nan")

    return {
        "relay-plain / direct": r("relay-plain", "direct"),
        "relay-plain / mitmdump-plain": r("relay-plain", "mitmdump-plain"),
        "relay-10-fields / direct": r("relay-10-fields", "direct"),
        "relay-10-fields / relay-plain": r("relay-10-fields", "relay-plain"),
    }


def render(results: dict[str, Result], found: dict[str, float], settings: str) -> str:
    lines = [
        f"egress relay, {settings}",
        "",
        f"{'scenario':<18}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'other cpu':>11}",
    ]
    for res in results.values():
        flag = " !" if res.other_cpu_pct > NOISY_PCT else ""
        lines.append(
            f"{res.scenario:<18}{res.rps:>9.0f}{res.p50_ms:>9.2f}{res.p99_ms:>9.2f}"
            f"{res.errors:>8}{res.other_cpu_pct:>10.0f}%{flag}"
        )
    lines += ["", *(f"{name:<32}{value:>6.2f}x" for name, value in found.items())]
    direct, plain, fields = (results[n] for n in ("direct", "relay-plain", "relay-10-fields"))
    lines.append(
        f"{'added p50 (relay-plain)':<32}{plain.p50_ms - direct.p50_ms:>6.2f} ms; "
        f"10 fields add {fields.p50_ms - plain.p50_ms:.2f} ms more"
    )
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.egress", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent callers")
    p.add_argument("--quick", action="store_true", help="3 s per scenario, 1 s warm-up")
    p.add_argument(
        "--quiet-wait", type=float, default=30.0, help="longest wait for other load to settle"
    )
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--third-party":
        third_party_main(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return 0
    args = parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.quiet_wait = 3.0, 1.0, 5.0
    signals_as_interrupt()
    work = Path(tempfile.mkdtemp(prefix="tokengate-egress-bench-"))
    try:
        return _run(args, work)
    finally:
        if args.keep:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    from proxy.egress.clients import new_client_secret, secret_digest

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    cert, key = work / "party.pem", work / "party.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(work / "upstream-ca.pem"))
    party_port, relay_port = free_port(), free_port()
    secret = new_client_secret()
    config = write_config(
        work, party_port=party_port, relay_port=relay_port, digest=secret_digest(secret)
    )
    tokens = uvloop.run(make_tokens(config))
    relay_pem = relay_ca(config)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    bindir = Path(sys.executable).parent
    with Servers(work) as servers:
        senv = {**env, "PYTHONPATH": str(REPO)}
        party = [sys.executable, "-m", "bench.egress", "--third-party", str(party_port)]
        _start(servers, "third-party", [*party, str(cert), str(key)], senv, party_port)
        relay = [str(bindir / "tokengate"), "egress", "serve", "--config", str(config)]
        _start(servers, "relay", relay, senv, relay_port)
        mitm_port, confdir = free_port(), work / "mitmdump"
        mitm = [str(bindir / "mitmdump"), "-q", "--mode", "regular", "--listen-host", "127.0.0.1"]
        mitm += ["--listen-port", str(mitm_port), "--set", f"confdir={confdir}"]
        mitm += ["--set", f"ssl_verify_upstream_trusted_ca={work / 'upstream-ca.pem'}"]
        _start(servers, "mitmdump", mitm, senv, mitm_port)
        proxies = {
            "relay": Proxy(f"http://127.0.0.1:{relay_port}", relay_pem, secret),
            "mitmdump": Proxy(
                f"http://127.0.0.1:{mitm_port}",
                (confdir / "mitmproxy-ca-cert.pem").read_text(),
                None,
            ),
        }
        base = f"https://localhost:{party_port}"
        plain = json.dumps({"fields": VALUES}).encode()
        with_tokens = json.dumps({"fields": tokens}).encode()
        scenarios = [
            Scenario("direct", f"{base}/plain", plain, via_relay=False),
            Scenario("mitmdump-plain", f"{base}/plain", plain, via_relay=True, proxy="mitmdump"),
            Scenario("relay-plain", f"{base}/plain", plain, via_relay=True),
            Scenario("relay-10-fields", f"{base}/fields", with_tokens, via_relay=True),
        ]
        results = uvloop.run(_measure_all(args, scenarios, proxies, ca, servers.session_ids()))
    found = ratios(results)
    settings = (
        f"{args.concurrency} concurrent callers, {args.duration:.0f} s per scenario "
        f"after {args.warmup:.0f} s warm-up, {os.cpu_count()} cpus"
    )
    print(render(results, found, settings))
    out = _write(args, results, found, settings)
    print(f"\nwritten: {out}")
    return 1 if any(r.errors or not r.requests for r in results.values()) else 0


def _start(servers: Servers, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
    servers.start(name, argv, ready=(), env=env, cwd=REPO)
    wait_port(port, name, servers)


async def _measure_all(
    args: argparse.Namespace,
    scenarios: Sequence[Scenario],
    proxies: dict[str, Proxy],
    party_ca: trustme.CA,
    sessions: list[int],
) -> dict[str, Result]:
    party_ssl = ssl.create_default_context()
    party_ca.configure_trust(party_ssl)
    out: dict[str, Result] = {}
    for scenario in scenarios:
        # Other processes on a 2-core machine skew every number: wait for a quiet moment.
        await asyncio.to_thread(
            cpu.wait_quiet, sessions, below_pct=NOISY_PCT, max_wait_s=args.quiet_wait
        )
        via = proxies[scenario.proxy]
        out[scenario.name] = await measure(
            scenario,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            relay=via.url,
            proxy_auth=aiohttp.encode_basic_auth(CLIENT, via.secret) if via.secret else None,
            relay_ssl=ssl.create_default_context(cadata=via.ca_pem),
            party_ssl=party_ssl,
            sessions=sessions,
        )
    return out


def _write(
    args: argparse.Namespace, results: dict[str, Result], found: dict[str, float], settings: str
) -> Path:
    outdir: Path = args.out
    outdir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = outdir / f"egress-{stamp}-{secrets.token_hex(2)}.json"
    env = environment()
    path.write_text(
        json.dumps(
            {
                "benchmark": "egress",
                "settings": settings,
                "environment": {k: env[k] for k in ("platform", "cpus", "python", "commit")},
                "results": [asdict(r) for r in results.values()],
                "ratios": found,
            },
            indent=2,
        )
    )
    return path


if __name__ == "__main__":
    sys.exit(main())
