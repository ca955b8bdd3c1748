"""Coalescing concurrent batch calls into one: one store round trip per message.

The field rules of one message run concurrently, each calling the vault with
its own batch. Calls made in the same event-loop turn are joined into one
call of ``run`` (so one store round trip), and each caller gets back exactly
its own slice, in order. A failure of the joined call fails every caller in
it (they would all have failed on the same store anyway): nothing is
half-answered.

Rules:
- The joined call starts on the next loop turn (``call_soon``), after every
  task already scheduled in this turn has had the chance to add its items;
  no timer, so a lone call waits for nothing.
- At most ``max_items`` items per joined call; a call that would pass it
  starts a new batch.
- A caller that is cancelled while waiting does not cancel the joined call
  (the others still need it); its slice is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Batch[T, R]:
    items: list[T] = field(default_factory=list)
    waiters: list[tuple[int, int, asyncio.Future[list[R]]]] = field(default_factory=list)


class Coalescer[T, R]:
    """Joins concurrent ``submit`` calls of one loop turn into one ``run`` call."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], *, max_items: int) -> None:
        if max_items < 1:
            raise ValueError("coalesce: max_items must be >= 1")
        self._run = run
        self._max = max_items
        self._open: _Batch[T, R] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, items: Sequence[T]) -> list[R]:
        """``run``'s results for ``items``, same length and order."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or len(batch.items) + len(items) > self._max:
            batch = self._open = _Batch()
            loop.call_soon(self._start, batch)
        start = len(batch.items)
        batch.items.extend(items)
        future: asyncio.Future[list[R]] = loop.create_future()
        # A caller cancelled while waiting never reads its future: mark it read.
        future.add_done_callback(_consume)
        batch.waiters.append((start, len(items), future))
        return await asyncio.shield(future)

    def _start(self, batch: _Batch[T, R]) -> None:
        if self._open is batch:
            self._open = None
        task = asyncio.get_running_loop().create_task(self._serve(batch), name="vault-coalesced")
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, batch: _Batch[T, R]) -> None:
        try:
            results = await self._run(batch.items)
            if len(results) != len(batch.items):
                raise RuntimeError("coalesce: run returned a different number of results")
        except BaseException as e:
            for _, _, future in batch.waiters:
                if not future.done():
                    future.set_exception(e)
            if isinstance(e, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            return
        for start, count, future in batch.waiters:
            if not future.done():
                future.set_result(results[start : start + count])


def _consume[X](future: asyncio.Future[X]) -> None:
    if not future.cancelled():
        future.exception()
