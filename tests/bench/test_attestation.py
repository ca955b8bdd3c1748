"""The attestation benchmark's pieces: real samples that verify, the guard, the arithmetic.

No timing is asserted: one tiny run checks the shape of what is printed and
written, the percentile helper is checked on known lists.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bench import attestation as bench
from tests.tee.test_sev_snp import SERIAL_ZERO_MESSAGE

SERIAL_ZERO = pytest.mark.filterwarnings(
    f"ignore:{re.escape(SERIAL_ZERO_MESSAGE)}:cryptography.utils.CryptographyDeprecationWarning"
)


def test_the_bench_filters_exactly_the_serial_zero_warning() -> None:
    assert bench.SERIAL_ZERO == SERIAL_ZERO_MESSAGE


@SERIAL_ZERO
def test_every_type_has_a_real_sample_that_verifies(tmp_path: Path) -> None:
    found = bench.samples(bench.VECTORS, tmp_path)
    assert tuple(s.name for s in found) == bench.TYPES
    for sample in found:
        assert sample.platform.value == sample.name
        bench.check(bench.verifier(sample, tmp_path), sample)  # raises SystemExit otherwise


@SERIAL_ZERO
@pytest.mark.parametrize("name", bench.TYPES)
def test_a_sample_outside_its_window_stops_the_bench(tmp_path: Path, name: str) -> None:
    [sample] = [s for s in bench.samples(bench.VECTORS, tmp_path) if s.name == name]
    late = dataclasses.replace(sample, at=sample.at + timedelta(days=3650))
    with pytest.raises(SystemExit, match=f"bench: {re.escape(name)}: the sample was refused"):
        bench.check(bench.verifier(late, tmp_path), late)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([4.0, 3.0, 2.0, 1.0], 99, 4.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 101)], 100, 100.0),
        ([float(i) for i in range(1, 201)], 99, 198.0),
    ],
    ids=["one-p50", "one-p99", "four-p50", "four-p99", "hundred-p99", "hundred-p100", "p99-200"],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert bench.percentile(values, q) == expected


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 0), ([1.0], 101)])
def test_percentile_refuses_nonsense(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        bench.percentile(values, q)


def test_summary_arithmetic() -> None:
    stats = bench.summarize("x", [0.001, 0.002, 0.003, 0.010], 0.008, 0.5)
    assert stats.calls == 4
    assert stats.p50_ms == pytest.approx(2.0)
    assert stats.p99_ms == pytest.approx(10.0)
    assert stats.cpu_ms == pytest.approx(2.0)
    assert stats.per_s == pytest.approx(500.0)


@SERIAL_ZERO
def test_one_tiny_run_prints_and_writes_every_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--calls", "1", "--rounds", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in bench.TYPES:
        assert re.search(rf"^{re.escape(name)}\s+1\s", out, re.MULTILINE), out
    [written] = tmp_path.glob("attestation-*.json")
    doc = json.loads(written.read_text())
    assert set(doc["types"]) == set(bench.TYPES)
    assert all(t["calls"] == 1 for t in doc["types"].values())


def test_unknown_type_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        bench.main(["--types", "nitro,tpm", "--out", str(tmp_path)])
    assert info.value.code == 2
