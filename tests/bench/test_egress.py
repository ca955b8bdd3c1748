"""The egress benchmark's arithmetic: percentiles and ratios within one run."""

from __future__ import annotations

import math

from bench.egress import Result, _pct, ratios, render


def _result(name: str, rps: float, p50: float = 1.0) -> Result:
    return Result(name, int(rps * 10), 0, rps, p50, p50 * 2, 3.0)


def test_percentiles_of_sorted_latencies() -> None:
    values = [float(i) for i in range(1, 101)]
    assert (_pct(values, 0.5), _pct(values, 0.99)) == (51.0, 100.0)
    assert math.isnan(_pct([], 0.5))


def test_ratios_and_render() -> None:
    results = {
        r.scenario: r
        for r in (
            _result("direct", 1000.0),
            _result("mitmdump-plain", 100.0, 20.0),
            _result("relay-plain", 200.0, 10.0),
            _result("relay-10-fields", 100.0, 12.0),
        )
    }
    found = ratios(results)
    assert found == {
        "relay-plain / direct": 0.2,
        "relay-plain / mitmdump-plain": 2.0,
        "relay-10-fields / direct": 0.1,
        "relay-10-fields / relay-plain": 0.5,
    }
    text = render(results, found, "x")
    assert "relay-10-fields" in text
    assert "10 fields add 2.00 ms more" in text
