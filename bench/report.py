"""Results of a gateway benchmark run: the printed table, the ratios, the goals, the JSON.

Ratios are of requests per second within one run (same machine, same wrk
settings, same backend), never across runs. The goals come from the issue:
tokengate pass-through at least 0.9x the reference aiohttp proxy and at least
5x mitmproxy.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.cpu import CpuShare
from bench.loadgen import WrkResult, WrkSettings
from bench.targets import REPO, Launch

TOKENGATE = ("tokengate-1w", "tokengate-1w-nolog", "tokengate-2w", "tokengate-2w-nolog")
PEERS = (("ref", "ref-aiohttp"), ("mitmproxy", "mitmdump"), ("nginx", "nginx"))
GOALS = (("ref-aiohttp", 0.9), ("mitmdump", 5.0))
NOISY_PCT = 15.0  # foreign CPU, in % of one core, above which a measurement is flagged


@dataclass(frozen=True, slots=True)
class Measurement:
    """One target on one endpoint: a wrk result, or why there is none."""

    target: str
    label: str
    endpoint: str
    result: WrkResult | None
    error: str | None = None
    cpu: CpuShare | None = None
    target_cpu_s: float | None = None  # CPU seconds the target's processes used meanwhile

    @classmethod
    def of(
        cls,
        launch: Launch,
        endpoint: str,
        result: WrkResult,
        cpu: CpuShare,
        target_cpu_s: float | None = None,
    ) -> Measurement:
        return cls(launch.name, launch.label, endpoint, result, cpu=cpu, target_cpu_s=target_cpu_s)

    @property
    def cpu_us_per_request(self) -> float | None:
        """CPU the target spent per answered request (all its processes, workers included).

        On a machine where the load generator, the backend and the proxy share
        few cores this is the fairer cost figure: rps depends on who wins the
        cores, CPU per request does not.
        """
        if self.target_cpu_s is None or self.result is None or not self.result.requests:
            return None
        return self.target_cpu_s / self.result.requests * 1e6

    @property
    def noisy(self) -> bool:
        return self.cpu is not None and self.cpu.foreign_pct > NOISY_PCT

    @classmethod
    def failed(cls, launch: Launch, endpoint: str, error: str) -> Measurement:
        return cls(launch.name, launch.label, endpoint, None, error)

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "label": self.label,
            "endpoint": self.endpoint,
            **(self.result.as_dict() if self.result else {}),
            "error": self.error,
            "cpu_pct_of_one_core": None
            if self.cpu is None
            else {
                "machine": round(self.cpu.busy_pct, 1),
                "benchmark": round(self.cpu.ours_pct, 1),
                "other_processes": round(self.cpu.foreign_pct, 1),
            },
            "noisy": self.noisy,
            "target_cpu_us_per_request": None
            if (us := self.cpu_us_per_request) is None
            else round(us, 1),
        }


def _version(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        return "not installed"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def environment() -> dict[str, str]:
    """What the numbers depend on: machine, tool versions, the commit measured."""
    venv = Path(sys.executable).parent
    return {
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "wrk": _version(["wrk", "-v"]),
        "nginx": _version(["nginx", "-v"]),
        "mitmdump": _version([str(venv / "mitmdump"), "--version"]),
        "commit": _version(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }


@dataclass(frozen=True, slots=True)
class GoalCheck:
    """One tokengate run against one goal on one endpoint."""

    endpoint: str
    target: str
    peer: str
    floor: float
    ratio: float | None  # None: one side was not measured cleanly
    ceiling: float | None  # direct / peer: no proxy can beat the backend it fronts
    noisy: bool  # either side was measured while other processes took CPU

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.ratio >= self.floor

    @property
    def verdict(self) -> str:
        if self.ratio is None:
            return "not measured"
        if self.ceiling is not None and self.ceiling < self.floor:
            return f"out of reach here: the backend itself is only {self.ceiling:.2f}x {self.peer}"
        return ("met" if self.met else "MISSED") + (" (noisy)" if self.noisy else "")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "met": self.met, "verdict": self.verdict}


@dataclass
class Report:
    """Every measurement of one run, in run order."""

    settings: WrkSettings
    warmup_s: int
    retries: int = 0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    measurements: list[Measurement] = field(default_factory=list)
    interrupted: bool = False

    def add(self, m: Measurement) -> None:
        self.measurements.append(m)

    def add_failed_target(self, launch: Launch, endpoints: list[str], error: str) -> None:
        for ep in endpoints:
            self.add(Measurement.failed(launch, ep, error.removeprefix(f"{launch.name}: ")))

    def failures(self) -> list[Measurement]:
        return [m for m in self.measurements if m.result is None or not m.result.clean]

    def noisy(self) -> list[Measurement]:
        return [m for m in self.measurements if m.noisy]

    def endpoints(self) -> list[str]:
        return list(dict.fromkeys(m.endpoint for m in self.measurements))

    def rps(self, target: str, endpoint: str) -> float | None:
        for m in self.measurements:
            if m.target == target and m.endpoint == endpoint and m.result and m.result.clean:
                return m.result.rps
        return None

    def _noisy(self, target: str, endpoint: str) -> bool:
        found = (m for m in self.measurements if m.target == target and m.endpoint == endpoint)
        return any(m.noisy for m in found)

    def _noisy_pair(self, a: str, b: str, endpoint: str) -> bool:
        return self._noisy(a, endpoint) or self._noisy(b, endpoint)

    def ratio(self, a: str, b: str, endpoint: str) -> float | None:
        x, y = self.rps(a, endpoint), self.rps(b, endpoint)
        return x / y if x is not None and y else None

    def ratios(self) -> dict[str, dict[str, float | None]]:
        """Per endpoint: every target / direct, and each tokengate run / each peer."""
        out: dict[str, dict[str, float | None]] = {}
        for ep in self.endpoints():
            r: dict[str, float | None] = {}
            for m in self.measurements:
                if m.endpoint == ep:
                    r[f"{m.target}/direct"] = self.ratio(m.target, "direct", ep)
            for tg in TOKENGATE:
                for short, peer in PEERS:
                    r[f"{tg}/{short}"] = self.ratio(tg, peer, ep)
            out[ep] = r
        return out

    def goals(self) -> list[GoalCheck]:
        """Each tokengate run that ran against each goal, per endpoint."""
        return [
            GoalCheck(
                ep,
                tg,
                peer,
                floor,
                self.ratio(tg, peer, ep),
                self.ratio("direct", peer, ep),
                self._noisy_pair(tg, peer, ep),
            )
            for ep in self.endpoints()
            for tg in TOKENGATE
            if any(m.target == tg and m.endpoint == ep for m in self.measurements)
            for peer, floor in GOALS
        ]

    def render(self) -> str:
        """The table, ratios and goals as printed text."""
        lines = [
            f"{self.settings.describe()}, warm-up {self.warmup_s}s, loopback, "
            f"targets one after another on this machine, noisy runs retried {self.retries}x"
        ]
        for ep in self.endpoints():
            lines += ["", f"endpoint {ep}", *self._table(ep), *self._ratio_table(ep)]
        if self.noisy():
            lines += [
                "",
                f"! other processes used more than {NOISY_PCT:.0f}% of a core during this "
                "measurement: its numbers are not trustworthy; rerun on a quiet machine",
            ]
        goals = self.goals()
        lines += ["", "goals (rps ratio in this run)" + ("" if goals else ": no tokengate run")]
        for g in goals:
            lines.append(
                f"  {g.endpoint:<11} {g.target:<19} >= {g.floor}x {g.peer:<12}"
                f" {_fmt(g.ratio, 'x'):>6}  {g.verdict}"
            )
        return "\n".join(lines)

    def _table(self, ep: str) -> list[str]:
        head = ("rps", "p50 ms", "p99 ms", "x direct", "cpu us/req", "other cpu")
        lines = [_row("target", *head)]
        for m in (m for m in self.measurements if m.endpoint == ep):
            if m.result is None:
                lines.append(f"{m.target:<20} FAILED: {_gist(m.error or '')}")
                continue
            res = m.result
            x = _fmt(self.ratio(m.target, "direct", ep))
            other = "-" if m.cpu is None else f"{m.cpu.foreign_pct:.0f}%" + "!" * m.noisy
            us = "-" if (c := m.cpu_us_per_request) is None else f"{c:.0f}"
            cells = (f"{res.rps:.0f}", f"{res.p50_ms:.2f}", f"{res.p99_ms:.2f}", x, us, other)
            row = _row(m.target, *cells)
            if not res.clean:
                row += f"  (errors: {res.socket_errors} socket, {res.non_2xx_3xx} non-2xx)"
            lines.append(row)
        return lines

    def _ratio_table(self, ep: str) -> list[str]:
        rows = []
        for tg in TOKENGATE:
            cells = [
                _fmt(self.ratio(tg, peer, ep)) + ("!" if self._noisy_pair(tg, peer, ep) else "")
                for _, peer in PEERS
            ]
            if any(not c.startswith("-") for c in cells):
                rows.append(_row(tg, *cells))
        return ["", _row("ratio (rps)", *(f"tg/{s}" for s, _ in PEERS)), *rows] if rows else []

    def write(self, outdir: Path) -> Path:
        """Write the JSON next to earlier runs; the path."""
        outdir.mkdir(parents=True, exist_ok=True)
        path = outdir / f"gateway-{self.started.strftime('%Y%m%dT%H%M%SZ')}.json"
        doc = {
            "benchmark": "gateway",
            "started": self.started.isoformat(),
            "interrupted": self.interrupted,
            "noisy_measurements": len(self.noisy()),
            "wrk": {**vars_of(self.settings), "warmup_s": self.warmup_s},
            "noisy_threshold_pct_of_one_core": NOISY_PCT,
            "retries_of_noisy_runs": self.retries,
            "environment": environment(),
            "results": [m.as_dict() for m in self.measurements],
            "ratios": self.ratios(),
            "goals": [g.as_dict() for g in self.goals()],
        }
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return path


def vars_of(settings: WrkSettings) -> dict[str, int]:
    return {
        "threads": settings.threads,
        "connections": settings.connections,
        "duration_s": settings.duration_s,
        "timeout_s": settings.timeout_s,
    }


def _gist(error: str) -> str:
    """First and last line of an error (what failed, and the log line that says why)."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()] or ["?"]
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"[:160]


def _fmt(x: float | None, unit: str = "") -> str:
    return "-" if x is None else f"{x:.2f}{unit}"


def _row(first: str, *cells: str) -> str:
    return f"{first:<20}" + "".join(f"{c:>14}" for c in cells)
