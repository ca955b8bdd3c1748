"""CPU used by other processes while a measurement runs (Linux ``/proc``).

On a 2-core machine anything else running (a test suite, a build) takes CPU
from the proxy being measured and makes its numbers meaningless. This meter
reads the machine's busy time from ``/proc/stat`` and subtracts what the
benchmark itself used: the servers' sessions (each server runs in its own
session, workers included), wrk and the harness. What remains is foreign load,
reported in percent of one core next to each measurement.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_TICK = float(os.sysconf("SC_CLK_TCK"))


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores; steal counts as busy)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


def sessions_cpu_s(sessions: Iterable[int]) -> float:
    """CPU seconds used so far by the live processes whose session id is in ``sessions``."""
    wanted = set(sessions)
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # the process ended meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state is fields[0]
        if int(fields[3]) in wanted:  # field 6 of proc(5): session id
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / _TICK


def harness_cpu_s() -> float:
    """CPU seconds of this process and its finished children (wrk runs)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall_s: float
    busy_s: float
    ours_s: float


@dataclass(frozen=True, slots=True)
class CpuShare:
    """Machine CPU during a window, in percent of one core."""

    busy_pct: float
    ours_pct: float

    @property
    def foreign_pct(self) -> float:
        return max(0.0, self.busy_pct - self.ours_pct)


def sample(sessions: Iterable[int]) -> CpuSample:
    return CpuSample(time.monotonic(), machine_busy_s(), sessions_cpu_s(sessions) + harness_cpu_s())


def share(before: CpuSample, after: CpuSample) -> CpuShare:
    """CPU used between two samples taken with the same sessions."""
    wall = max(after.wall_s - before.wall_s, 1e-9)
    return CpuShare(
        busy_pct=100 * (after.busy_s - before.busy_s) / wall,
        ours_pct=100 * (after.ours_s - before.ours_s) / wall,
    )


def wait_quiet(
    sessions: Iterable[int], *, below_pct: float, max_wait_s: float, window_s: float = 1.0
) -> float:
    """Wait (up to ``max_wait_s``) for a ``window_s`` in which other processes stay under
    ``below_pct`` of a core; the foreign load of the last window.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = sample(sessions)
        time.sleep(window_s)
        foreign = share(before, sample(sessions)).foreign_pct
        if foreign < below_pct or time.monotonic() >= deadline:
            return foreign
