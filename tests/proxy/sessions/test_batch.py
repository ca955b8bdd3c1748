"""CheckBatcher: one store call per loop turn, never an answer read before its question."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from proxy.sessions.batch import CheckBatcher
from proxy.sessions.errors import SessionStoreUnavailable


class Store:
    """A fake store call that records each batch and can be held open."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.fail: BaseException | None = None
        self.short = False

    async def send(self, questions: Sequence[str]) -> list[str]:
        self.calls.append(list(questions))
        call = len(self.calls)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        answers = [f"{q}@call{call}" for q in questions]
        return answers[:-1] if self.short else answers


async def test_questions_of_one_turn_share_one_call_in_order() -> None:
    store = Store()
    batcher = CheckBatcher(store.send)
    answers = await asyncio.gather(*(batcher.ask(f"q{i}") for i in range(5)))
    assert store.calls == [["q0", "q1", "q2", "q3", "q4"]]
    assert answers == [f"q{i}@call1" for i in range(5)]
    assert batcher.calls == 1


async def test_sequential_questions_each_get_their_own_call() -> None:
    store = Store()
    batcher = CheckBatcher(store.send)
    assert await batcher.ask("a") == "a@call1"
    assert await batcher.ask("b") == "b@call2"
    assert store.calls == [["a"], ["b"]]


async def test_a_question_asked_while_a_call_is_in_flight_waits_for_a_new_call() -> None:
    """Never piggy-back on a call sent before the question: it may predate a revoke."""
    store = Store()
    store.gate = asyncio.Event()
    batcher = CheckBatcher(store.send)
    first = asyncio.create_task(batcher.ask("early"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert store.calls == [["early"]]  # sent, and held open
    late = asyncio.create_task(batcher.ask("late"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert store.calls == [["early"], ["late"]]
    store.gate.set()
    assert await first == "early@call1"
    assert await late == "late@call2"


@pytest.mark.parametrize(
    "failure",
    [SessionStoreUnavailable("sessions: redis store x failed: check"), OSError("reset")],
    ids=["store-error", "other-error"],
)
async def test_a_failed_call_fails_every_question_closed(failure: BaseException) -> None:
    store = Store()
    store.fail = failure
    batcher = CheckBatcher(store.send)
    results = await asyncio.gather(
        *(batcher.ask(f"q{i}") for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, SessionStoreUnavailable) for r in results)
    assert len({id(r) for r in results}) == 3  # one exception per asker
    assert all(r.__cause__ is failure for r in results if isinstance(r, BaseException))
    if isinstance(failure, SessionStoreUnavailable):
        assert {str(r) for r in results} == {str(failure)}


async def test_a_short_answer_fails_closed() -> None:
    store = Store()
    store.short = True
    batcher = CheckBatcher(store.send)
    results = await asyncio.gather(batcher.ask("a"), batcher.ask("b"), return_exceptions=True)
    assert all(isinstance(r, SessionStoreUnavailable) for r in results)


async def test_a_cancelled_asker_does_not_disturb_the_others() -> None:
    store = Store()
    store.gate = asyncio.Event()
    batcher = CheckBatcher(store.send)
    gone = asyncio.create_task(batcher.ask("gone"))
    stays = asyncio.create_task(batcher.ask("stays"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gone.cancel()
    store.gate.set()
    assert await stays == "stays@call1"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert store.calls == [["gone", "stays"]]


async def test_large_turns_are_split_into_calls_of_max_batch() -> None:
    store = Store()
    batcher = CheckBatcher(store.send, max_batch=3)
    answers = await asyncio.gather(*(batcher.ask(f"q{i}") for i in range(7)))
    assert [len(c) for c in store.calls] == [3, 3, 1]
    assert sorted(q for c in store.calls for q in c) == sorted(f"q{i}" for i in range(7))
    assert [a.split("@")[0] for a in answers] == [f"q{i}" for i in range(7)]


async def test_a_cancelled_call_fails_its_askers_closed() -> None:
    store = Store()
    store.gate = asyncio.Event()
    batcher = CheckBatcher(store.send)
    asker = asyncio.create_task(batcher.ask("q"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for task in list(batcher._tasks):
        task.cancel()
    with pytest.raises(SessionStoreUnavailable):
        await asker
    await batcher.close()


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        CheckBatcher(Store().send, max_batch=0)
