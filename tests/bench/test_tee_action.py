"""The TEE benchmark's pieces: a tiny real run, the answer guard, the arithmetic.

No timing is asserted: the run checks the shape of what is printed and written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench import tee_action as bench
from plugins.tee import Tee


def test_percentile_is_nearest_rank() -> None:
    assert bench.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert bench.percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert bench.percentile([5.0], 99) == 5.0


def test_the_stand_ins_for_unused_dependencies_refuse_any_use() -> None:
    with pytest.raises(RuntimeError, match="used tokenize unexpectedly"):
        bench.Unused().tokenize  # noqa: B018


class Refusing:
    """A pool whose job refuses every card."""

    async def run(
        self, job: str, values: Sequence[str], *, tenant: str, request_id: str
    ) -> list[str]:
        return ['{"valid":false}'] * len(values)


async def test_an_answer_that_is_not_accepted_stops_the_bench() -> None:
    action = Tee()
    action.configure({"job": "card_check", "accept": {"valid": True}})
    with pytest.raises(SystemExit, match="did not accept"):
        await bench.one(action, Refusing(), 0, 2)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_tiny_run_prints_and_writes_both_pool_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--calls", "3", "--warmup", "1", "--duration", "0.3", "--concurrency", "2"]
    argv += ["--rounds", "1", "--quiet-wait", "0"]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| workers | calls |" in printed
    [written] = tmp_path.glob("tee-*.json")
    doc = json.loads(written.read_text())
    assert [r["workers"] for r in doc["rows"]] == [1, 2]
    assert all(r["calls"] == 3 and r["load_messages"] > 0 for r in doc["rows"])
