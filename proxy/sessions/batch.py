"""Revocation checks asked in one event-loop turn, answered by ONE store call.

Under load a worker wakes many requests per turn of its event loop; each asks
the store whether its session is still valid. Sending those questions one by
one costs a round trip (and the client library's CPU) per request. The batcher
collects them and sends one call for all of them on the next turn.

Rules:

- No answer is ever reused: every question is part of exactly one store call,
  and that call is sent after the question was asked. So a request sees the
  store as it is after the request arrived, exactly as with a call of its own,
  and a revocation that returned before a request arrived is seen by it
  (immediate revocation, DESIGN.md "Sessions").
- A failed call fails every question of it (each gets its own
  SessionStoreUnavailable, the cause chained): fail closed.
- A question whose asker went away (cancelled) is still sent; its answer is
  dropped.
- At most ``max_batch`` questions go into one call; more are split into calls
  sent concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from proxy.sessions.errors import SessionStoreUnavailable


class CheckBatcher[Q, A]:
    """Coalesces the questions of one loop turn into store calls of up to ``max_batch``."""

    def __init__(
        self,
        send: Callable[[Sequence[Q]], Awaitable[Sequence[A]]],
        *,
        max_batch: int = 128,
        name: str = "sessions-check",
    ) -> None:
        if max_batch < 1:
            raise ValueError("sessions: max_batch must be at least 1")
        self._send = send
        self._max = max_batch
        self._name = name
        self._pending: list[tuple[Q, asyncio.Future[A]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0  # store calls made (each one round trip)

    async def ask(self, question: Q) -> A:
        """The store's answer to ``question``, from a call sent after it was asked."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[A] = loop.create_future()
        self._pending.append((question, future))
        if len(self._pending) == 1:
            # The task's first step runs on the next turn, after every request
            # this turn woke has had its chance to ask.
            task = loop.create_task(self._flush(), name=self._name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        chunks = [batch[i : i + self._max] for i in range(0, len(batch), self._max)]
        if len(chunks) == 1:
            await self._answer(chunks[0])
        else:
            await asyncio.gather(*(self._answer(c) for c in chunks))

    async def _answer(self, chunk: list[tuple[Q, asyncio.Future[A]]]) -> None:
        self.calls += 1
        try:
            answers = await self._send([q for q, _ in chunk])
            if len(answers) != len(chunk):
                raise SessionStoreUnavailable("sessions: store answered a batch short")
        except (Exception, asyncio.CancelledError) as e:
            message = (
                str(e)
                if isinstance(e, SessionStoreUnavailable)
                else "sessions: revocation check failed"
            )
            for _, future in chunk:
                if not future.done():
                    failure = SessionStoreUnavailable(message)  # one per asker, cause chained
                    failure.__cause__ = e
                    future.set_exception(failure)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        for (_, future), answer in zip(chunk, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def close(self) -> None:
        """Wait for the calls in flight (their askers get their answers or failures)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
