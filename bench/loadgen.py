"""The load generator: one wrk run and the numbers read from its ``--latency`` report.

wrk (https://github.com/wg/wrk) keeps every connection busy with keep-alive
requests for a fixed time and prints throughput and a latency distribution;
p50 and p99 are its 50% and 99% lines. A run that saw socket errors or non-2xx/3xx
answers is kept but flagged, because its numbers describe failures, not service.
Requests other than a plain GET (a POST with a JSON body, say) need a wrk Lua
script: :func:`request_script` writes one, passed as ``script``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.MULTILINE)
_SOCKET = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class WrkSettings:
    """The wrk options shared by every target of one run."""

    threads: int
    connections: int
    duration_s: int
    timeout_s: int = 5

    def argv(
        self,
        url: str,
        headers: Mapping[str, str],
        duration_s: int | None = None,
        script: Path | None = None,
    ) -> list[str]:
        out = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{duration_s or self.duration_s}s",
            f"--timeout={self.timeout_s}s",
            "--latency",
        ]
        if script is not None:
            out += ["-s", str(script)]
        for name, value in headers.items():
            out += ["-H", f"{name}: {value}"]
        return [*out, url]

    def describe(self) -> str:
        return f"wrk -t{self.threads} -c{self.connections} -d{self.duration_s}s --latency"


@dataclass(frozen=True, slots=True)
class WrkResult:
    """Throughput, latency percentiles (milliseconds) and error counts of one run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    duration_s: float
    socket_errors: int
    non_2xx_3xx: int

    @property
    def clean(self) -> bool:
        return self.socket_errors == 0 and self.non_2xx_3xx == 0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "clean": self.clean}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(text: str) -> WrkResult:
    """Read a ``wrk --latency`` report; ValueError if a needed line is missing."""
    rps = _RPS.search(text)
    total = _TOTAL.search(text)
    latency = {m.group(1): _ms(m.group(2), m.group(3)) for m in _LATENCY.finditer(text)}
    if rps is None or total is None or set(latency) != {"50", "99"}:
        raise ValueError("wrk: report lacks Requests/sec, request count or 50%/99% latency")
    socket = _SOCKET.search(text)
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        requests=int(total.group(1)),
        duration_s=_ms(total.group(2), total.group(3)) / 1e3,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal: printable ASCII kept, every other byte as ``\\ddd``."""
    out = ['"']
    for b in data:
        c = chr(b)
        out.append(c if 0x20 <= b < 0x7F and c not in '"\\' else f"\\{b:03d}")
    out.append('"')
    return "".join(out)


def request_script(method: str, body: bytes | None = None) -> str:
    """A wrk Lua script sending ``method`` with ``body`` on every request.

    wrk adds Content-Length from ``wrk.body``; other headers (Content-Type) still
    come from ``-H``.
    """
    lines = [f"wrk.method = {lua_string(method.encode())}"]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    return "\n".join(lines) + "\n"


def run_wrk(
    settings: WrkSettings,
    url: str,
    headers: Mapping[str, str],
    *,
    duration_s: int | None = None,
    slack_s: float = 30.0,
    script: Path | None = None,
) -> tuple[WrkResult, str]:
    """Run wrk on ``url`` to completion; the parsed result and the raw report.

    ``script``: a wrk Lua script (see :func:`request_script`) for requests other
    than a plain GET.
    """
    argv = settings.argv(url, headers, duration_s, script)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=(duration_s or settings.duration_s) + slack_s,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"wrk: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse_wrk(done.stdout), done.stdout
