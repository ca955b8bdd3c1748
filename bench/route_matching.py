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


def time_probe(router: Router, p: Probe, number: int, repeat: int) -> float:
    """Median ns per ``router.match`` call over ``repeat`` runs of ``number`` calls."""
    timer = timeit.Timer(
        "match(host, method, path)",
        globals={"match": router.match, "host": p.host, "method": p.method, "path": p.path},
    )
    return statistics.median(timer.repeat(repeat=repeat, number=number)) / number * 1e9


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


def measure(n: int, number: int, repeat: int) -> SizeResult:
    """Compile a table of ``n`` routes (timed), verify it, and time every probe."""
    routes = build_routes(n)
    compile_s = timeit.Timer(functools.partial(Router.compile, routes)).repeat(repeat=5, number=1)
    router = Router.compile(routes)
    checks = probes(n)
    verify(router, checks)
    ns = {p.case: time_probe(router, p, number, repeat) for p in checks}
    return SizeResult(n, statistics.median(compile_s) * 1e3, ns, checks)


def ratios(results: list[SizeResult]) -> dict[str, float]:
    """Largest table over smallest, per probe and for the mean."""
    lo, hi = results[0], results[-1]
    out = {case: hi.ns_per_match[case] / lo.ns_per_match[case] for case in lo.ns_per_match}
    out["mean"] = hi.mean_ns / lo.mean_ns
    return out


def to_json(results: list[SizeResult], number: int, repeat: int) -> dict[str, object]:
    return {
        "benchmark": "route_matching",
        "started": datetime.now(UTC).isoformat(),
        "python": sys.version.split()[0],
        "timeit": {"number": number, "repeat": repeat, "statistic": "median"},
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
    results = [measure(n, number, repeat) for n in SIZES]
    print(f"timeit: {number} calls x {repeat} repeats, median; Python {sys.version.split()[0]}")
    print(render(results))
    doc = to_json(results, number, repeat)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"route-matching-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
