"""Coalescer: concurrent batches of one loop turn become one call; each caller gets its slice."""

from __future__ import annotations

import asyncio

import pytest

from vault.coalesce import Coalescer


class Runner:
    def __init__(self, *, fail: BaseException | None = None, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.fail = fail
        self.delay = delay

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return [i * 10 for i in items]


async def test_one_turn_one_call_each_its_own_slice() -> None:
    run = Runner()
    c = Coalescer(run, max_items=100)
    out = await asyncio.gather(c.submit([1, 2]), c.submit([3]), c.submit([4, 5, 6]))
    assert list(out) == [[10, 20], [30], [40, 50, 60]]
    assert run.calls == [[1, 2, 3, 4, 5, 6]]


async def test_awaited_calls_run_alone() -> None:
    run = Runner()
    c = Coalescer(run, max_items=100)
    assert await c.submit([1]) == [10]
    assert await c.submit([2]) == [20]
    assert run.calls == [[1], [2]]


async def test_empty_submit_makes_no_call() -> None:
    run = Runner()
    assert await Coalescer(run, max_items=10).submit([]) == []
    assert run.calls == []


async def test_max_items_splits_batches() -> None:
    run = Runner()
    c = Coalescer(run, max_items=3)
    out = await asyncio.gather(c.submit([1, 2]), c.submit([3, 4]), c.submit([5]))
    assert list(out) == [[10, 20], [30, 40], [50]]
    assert run.calls == [[1, 2], [3, 4, 5]]


async def test_a_failure_fails_every_caller_of_the_batch() -> None:
    c = Coalescer(Runner(fail=ConnectionError("down")), max_items=10)
    results = await asyncio.gather(c.submit([1]), c.submit([2]), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_wrong_result_count_fails_closed() -> None:
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    c = Coalescer(short, max_items=10)
    with pytest.raises(RuntimeError, match="different number"):
        await asyncio.gather(c.submit([1]), c.submit([2]))


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    run = Runner(delay=0.05)
    c = Coalescer(run, max_items=10)
    first = asyncio.create_task(c.submit([1]))
    second = asyncio.create_task(c.submit([2]))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == [20]
    with pytest.raises(asyncio.CancelledError):
        await first
    assert run.calls == [[1, 2]]


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_items"):
        Coalescer(Runner(), max_items=0)
