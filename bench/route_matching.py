"""Route matching cost against table size: ``.venv/bin/python bench/route_matching.py [--quick]``.

Builds tables of 10, 100 and 1,000 routes with a realistic mix (exact paths,
one- and two-parameter templates, prefixes, per-tenant hosts, two wildcard
hosts, three regexes), compiles each once with ``Router.compile``, checks that
every probe matches the route it should (or none), then times
``router.match(host, method, path)`` per probe with timeit: ``number`` calls
per repeat, median of the repeats, in ns per call. The goal is flat cost: the
1000/10 ratio close to 1.

Regex routes and wildcard hosts are tried one by one, so their count is fixed
across sizes (a real config has a handful); everything that grows with the
table lives in the compiled trie.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import timeit
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from policy.model import Route
from policy.routing import Match, Router

SIZES = (10, 100, 1000)
REGEXES = (
    ("legacy-report", r"/legacy/report-\d{4}\.pdf"),
    ("legacy-export", r"/legacy/export/[a-z]+\.csv"),
    ("old-profile", r"/~[a-z]{1,32}/profile"),
)
WILDCARDS = ("*.eu.example.com", "*.us.example.com")
HOST = "app.example.com"


@dataclass(frozen=True, slots=True)
class Probe:
    """One lookup and the route it must find (None: it must find none)."""

    case: str
    host: str
    method: str
    path: str
    expect: str | None


def _route(name: str, **match: object) -> Route:
    return Route.model_validate({"name": name, "match": match, "allow_unauthenticated": True})


def _counts(n: int) -> tuple[int, int, int, int]:
    """(exact, template, prefix, host) route counts: about 45/30/15/10%, at least one each."""
    rest = n - len(REGEXES) - len(WILDCARDS)
    n_template = max(2, rest * 30 // 100)  # even ones take one parameter, odd ones two
    n_prefix = max(1, rest * 15 // 100)
    n_host = max(1, rest // 10)
    return rest - n_template - n_prefix - n_host, n_template, n_prefix, n_host


def build_routes(n: int) -> list[Route]:
    """``n`` routes: exact paths, templates, prefixes, per-tenant hosts, and the fixed five."""
    fixed = [_route(name, regex=rx) for name, rx in REGEXES]
    fixed += [_route(f"wild{i}", host=h, prefix="/api") for i, h in enumerate(WILDCARDS)]
    n_exact, n_template, n_prefix, n_host = _counts(n)
    routes = [_route(f"page{i}", path=f"/app/page{i}") for i in range(n_exact)]
    for i in range(n_template):
        path = f"/api/v1/res{i}/{{id}}" + ("/items/{item}" if i % 2 else "")
        routes.append(_route(f"res{i}", path=path, methods=["GET", "PUT"]))
    routes += [_route(f"static{i}", prefix=f"/static/s{i}") for i in range(n_prefix)]
    routes += [
        _route(f"tenant{i}", host=f"tenant{i}.example.com", prefix="/api") for i in range(n_host)
    ]
    return routes + fixed


def probes(n: int) -> list[Probe]:
    """Early, late and missing lookups for the table of size ``n``."""
    n_exact, n_template, n_prefix, n_host = _counts(n)
    p_late, h_late = n_prefix - 1, n_host - 1
    t_odd = n_template - 1 if (n_template - 1) % 2 else n_template - 2
    t_even = n_template - 1 if t_odd == n_template - 2 else n_template - 2
    return [
        Probe("exact-early", HOST, "GET", "/app/page0", "page0"),
        Probe("exact-late", HOST, "GET", f"/app/page{n_exact - 1}", f"page{n_exact - 1}"),
        Probe("template-early", HOST, "GET", "/api/v1/res0/42", "res0"),
        Probe("template-late", HOST, "PUT", f"/api/v1/res{t_even}/42", f"res{t_even}"),
        Probe("template2-late", HOST, "GET", f"/api/v1/res{t_odd}/42/items/7", f"res{t_odd}"),
        Probe("prefix-late", HOST, "GET", f"/static/s{p_late}/app.css", f"static{p_late}"),
        Probe("host-late", f"tenant{h_late}.example.com", "GET", "/api/x", f"tenant{h_late}"),
        Probe("wildcard-host", "acme.us.example.com", "GET", "/api/orders", "wild1"),
        Probe("regex", HOST, "GET", "/legacy/report-2024.pdf", "legacy-report"),
        Probe("miss-path", HOST, "GET", "/nothing/here/at/all", None),
        Probe("miss-deep", HOST, "GET", "/api/v1/unknown/1/2/3/4", None),
        Probe("miss-method", HOST, "DELETE", "/api/v1/res0/42", None),
    ]


def verify(router: Router, checks: list[Probe]) -> None:
    """Stop if a probe does not find what it should: timing a wrong answer is meaningless."""
    for p in checks:
        got = router.match(p.host, p.method, p.path)
        name = got.route.name if isinstance(got, Match) else None
        if name != p.expect:
            raise SystemExit(f"route_matching: {p.case} {p.path} matched {name}, not {p.expect}")


def _timer(router: Router, p: Probe) -> timeit.Timer:
    return timeit.Timer(
        "match(host, method, path)",
        globals={"match": router.match, "host": p.host, "method": p.method, "path": p.path},
    )


@dataclass(frozen=True, slots=True)
class SizeResult:
    """Timings of one table size."""

    size: int
    compile_ms: float
    ns_per_match: dict[str, float]
    probes: list[Probe]

    @property
    def mean_ns(self) -> float:
        return statistics.fmean(self.ns_per_match.values())


def measure(number: int, repeat: int) -> list[SizeResult]:
    """Compile (timed) and verify every table, then time every probe on every size.

    Repeats are interleaved across sizes (repeat 1 of every size and probe, then
    repeat 2, ...), so a burst of load elsewhere hits all sizes alike instead of
    inflating whichever size happened to run during it.
    """
    routers: dict[int, Router] = {}
    compile_ms: dict[int, float] = {}
    checks: dict[int, list[Probe]] = {}
    for n in SIZES:
        routes = build_routes(n)
        timer = timeit.Timer(functools.partial(Router.compile, routes))
        compile_ms[n] = statistics.median(timer.repeat(repeat=5, number=1)) * 1e3
        routers[n] = Router.compile(routes)
        checks[n] = probes(n)
        verify(routers[n], checks[n])
    timers = {(n, p.case): _timer(routers[n], p) for n in SIZES for p in checks[n]}
    runs: dict[tuple[int, str], list[float]] = {key: [] for key in timers}
    for _ in range(repeat):
        for key, timer in timers.items():
            runs[key].append(timer.timeit(number) / number * 1e9)
    return [
        SizeResult(
            n,
            compile_ms[n],
            {p.case: statistics.median(runs[(n, p.case)]) for p in checks[n]},
            checks[n],
        )
        for n in SIZES
    ]


def ratios(results: list[SizeResult]) -> dict[str, float]:
    """Largest table over smallest, per probe and for the mean."""
    lo, hi = results[0], results[-1]
    out = {case: hi.ns_per_match[case] / lo.ns_per_match[case] for case in lo.ns_per_match}
    out["mean"] = hi.mean_ns / lo.mean_ns
    return out


def to_json(
    results: list[SizeResult], number: int, repeat: int, foreign_pct: float
) -> dict[str, object]:
    return {
        "benchmark": "route_matching",
        "started": datetime.now(UTC).isoformat(),
        "python": sys.version.split()[0],
        "timeit": {"number": number, "repeat": repeat, "statistic": "median", "interleaved": True},
        "other_processes_pct_of_one_core": round(foreign_pct, 1),
        "sizes": {
            str(r.size): {
                "compile_ms": r.compile_ms,
                "ns_per_match": r.ns_per_match,
                "mean_ns_per_match": r.mean_ns,
                "probes": [asdict(p) for p in r.probes],
            }
            for r in results
        },
        f"ratio_{results[-1].size}_over_{results[0].size}": ratios(results),
    }


def render(results: list[SizeResult]) -> str:
    """The printed table: ns per match by probe and size, and the largest/smallest ratio."""
    rat = ratios(results)
    label = f"{results[-1].size}/{results[0].size}"
    lines = [
        f"{'ns per match':<16}"
        + "".join(f"{f'{r.size} routes':>13}" for r in results)
        + f"{label:>10}"
    ]
    for case in results[0].ns_per_match:
        cells = "".join(f"{r.ns_per_match[case]:>13.0f}" for r in results)
        lines.append(f"{case:<16}{cells}{rat[case]:>10.2f}")
    cells = "".join(f"{r.mean_ns:>13.0f}" for r in results)
    lines.append(f"{'mean':<16}{cells}{rat['mean']:>10.2f}")
    cells = "".join(f"{r.compile_ms:>13.2f}" for r in results)
    lines.append(f"{'compile (ms)':<16}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="route matching cost against table size")
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats (median taken)")
    parser.add_argument("--quick", action="store_true", help="2,000 calls x 5 repeats")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    number, repeat = (2_000, 5) if args.quick else (args.number, args.repeat)
    from bench import cpu  # here: run as a script, bench/ is importable only after __main__

    before = cpu.sample([])
    results = measure(number, repeat)
    load = cpu.share(before, cpu.sample([]))
    print(
        f"timeit: {number} calls x {repeat} repeats (interleaved across sizes), median; "
        f"Python {sys.version.split()[0]}; other processes used {load.foreign_pct:.0f}% of a core"
    )
    print(render(results))
    doc = to_json(results, number, repeat, load.foreign_pct)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"route-matching-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    # Run as a script, Python puts bench/ on the path, not the repo that holds the package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
