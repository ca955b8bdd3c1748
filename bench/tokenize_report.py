"""Results of the tokenization benchmark: added latency over pass-through, rps, goals.

Two wrk phases measure every target with the same settings within one run:

- ``latency``: few connections (1 by default), so a request never waits behind
  another and p50/p99 are the time one request takes; the *added* latency of a
  field route is its p50 (p99) minus the pass-through's on the same request
  (same backend, same worker count, same body), measured next to each other.
- ``load``: many connections (64), for requests per second; its percentiles are
  mostly queueing and are kept in the JSON only.

Goals of the issue, on one worker: 10-field tokenize adds <= 2 ms p50 on SQLite;
100-token detokenize adds <= 5 ms p50 on Redis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.loadgen import WrkResult
from bench.report import NOISY_PCT, Measurement, Report


@dataclass(frozen=True, slots=True)
class Goal:
    endpoint: str
    backend: str
    max_added_p50_ms: float


GOALS = (Goal("tokenize-10", "sqlite", 2.0), Goal("detokenize-100", "redis", 5.0))


def target_name(kind: str, workers: int, backend: str) -> str:
    """``fields-1w-sqlite``: a gateway kind (passthrough | fields), worker count, vault backend."""
    return f"{kind}-{workers}w-{backend}"


def _find(report: Report, target: str, endpoint: str) -> Measurement | None:
    for m in report.measurements:
        if m.target == target and m.endpoint == endpoint:
            return m
    return None


def _clean(m: Measurement | None) -> WrkResult | None:
    return m.result if m is not None and m.result is not None and m.result.clean else None


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass(frozen=True, slots=True)
class Row:
    """One request shape on one backend and worker count: field route against pass-through."""

    backend: str
    workers: int
    endpoint: str
    rps: float | None
    base_rps: float | None
    p50_ms: float | None
    base_p50_ms: float | None
    p99_ms: float | None
    base_p99_ms: float | None
    noisy: bool
    error: str | None  # why a side is missing

    @property
    def added_p50_ms(self) -> float | None:
        return _sub(self.p50_ms, self.base_p50_ms)

    @property
    def added_p99_ms(self) -> float | None:
        return _sub(self.p99_ms, self.base_p99_ms)

    @property
    def rps_ratio(self) -> float | None:
        return self.rps / self.base_rps if self.rps is not None and self.base_rps else None

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "added_p50_ms": self.added_p50_ms,
            "added_p99_ms": self.added_p99_ms,
            "rps_ratio": self.rps_ratio,
        }


def rows(latency: Report, load: Report) -> list[Row]:
    """Every field-route measurement paired with its pass-through, in run order."""
    out: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for m in [*latency.measurements, *load.measurements]:
        kind, _, rest = m.target.partition("-")
        if kind != "fields" or (m.target, m.endpoint) in seen:
            continue
        seen.add((m.target, m.endpoint))
        workers, backend = rest.split("-", 1)
        base = target_name("passthrough", int(workers.removesuffix("w")), backend)
        pairs = [
            (_find(latency, m.target, m.endpoint), _find(latency, base, m.endpoint)),
            (_find(load, m.target, m.endpoint), _find(load, base, m.endpoint)),
        ]
        (lat, lat_base), (ld, ld_base) = [(_clean(a), _clean(b)) for a, b in pairs]
        sides = [x for pair in pairs for x in pair if x is not None]
        errors = [f"{x.target}: {x.error or 'errors'}" for x in sides if _clean(x) is None]
        out.append(
            Row(
                backend=backend,
                workers=int(workers.removesuffix("w")),
                endpoint=m.endpoint,
                rps=ld.rps if ld else None,
                base_rps=ld_base.rps if ld_base else None,
                p50_ms=lat.p50_ms if lat else None,
                base_p50_ms=lat_base.p50_ms if lat_base else None,
                p99_ms=lat.p99_ms if lat else None,
                base_p99_ms=lat_base.p99_ms if lat_base else None,
                noisy=any(x.noisy for x in sides),
                error="; ".join(errors) or None,
            )
        )
    return out


def goal_checks(found: list[Row]) -> list[dict[str, object]]:
    """Each goal of the issue against the one-worker row it is about."""
    out: list[dict[str, object]] = []
    for g in GOALS:
        row = next(
            (r for r in found if (r.endpoint, r.backend, r.workers) == (g.endpoint, g.backend, 1)),
            None,
        )
        added = row.added_p50_ms if row else None
        if added is None:
            verdict = "not measured"
        else:
            verdict = ("met" if added <= g.max_added_p50_ms else "MISSED") + (
                " (noisy)" if row and row.noisy else ""
            )
        out.append(
            {
                **asdict(g),
                "added_p50_ms": added,
                "met": None if added is None else added <= g.max_added_p50_ms,
                "verdict": verdict,
            }
        )
    return out


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


HEADER = (
    f"{'backend':<9}{'w':>2} {'variant':<15}{'rps':>8}{'pass':>8}{'x':>6}"
    f"{'p50':>8}{'pass':>7}{'+p50':>7}{'p99':>8}{'pass':>7}{'+p99':>7}"
)


def render(latency: Report, load: Report, notes: list[str]) -> str:
    """The printed table (ms, rps) and the goals."""
    found = rows(latency, load)
    lines = [
        f"latency: {latency.settings.describe()}; rps: {load.settings.describe()}; "
        f"warm-up {load.warmup_s}s; loopback; field route and pass-through measured "
        "back to back",
        "p50/p99 in ms from the latency phase, +p50/+p99 = field route minus pass-through",
        "",
        HEADER,
    ]
    for r in found:
        line = (
            f"{r.backend:<9}{r.workers:>2} {r.endpoint:<15}{_f(r.rps, '.0f'):>8}"
            f"{_f(r.base_rps, '.0f'):>8}{_f(r.rps_ratio):>6}"
            f"{_f(r.p50_ms):>8}{_f(r.base_p50_ms):>7}{_f(r.added_p50_ms):>7}"
            f"{_f(r.p99_ms):>8}{_f(r.base_p99_ms):>7}{_f(r.added_p99_ms):>7}"
            + (" !" if r.noisy else "")
        )
        lines.append(line)
        if r.error:
            lines.append(f"    FAILED: {r.error.strip().splitlines()[-1][:140]}")
    if any(r.noisy for r in found):
        lines.append(f"! other processes used more than {NOISY_PCT:.0f}% of a core: rerun quiet")
    lines += ["", "goals (added p50, one worker)"]
    for g in goal_checks(found):
        lines.append(
            f"  {g['endpoint']:<15} on {g['backend']:<7} <= {g['max_added_p50_ms']} ms:"
            f" {_f(g['added_p50_ms'] if isinstance(g['added_p50_ms'], float) else None):>6}"
            f"  {g['verdict']}"
        )
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
