"""The key manager's background work: a periodic tick and on-demand refreshes.

Every ``interval`` seconds the task runs ``KeyManager.maintain()`` (refresh,
usage counts, scheduled rotation). ``refresh_soon()`` may be called from any
thread when a request met a key version this process does not have yet; it
schedules one refresh at once (never more than one in flight). Failures are
logged and the loop goes on: a dead loop would silently stop rotations.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from kms_client.errors import KmsError

log = logging.getLogger(__name__)


class Maintained(Protocol):
    """What the background task drives."""

    async def maintain(self) -> None:
        """One tick of background work."""
        ...

    async def refresh(self) -> bool:
        """Pick up another replica's keyring now."""
        ...


class Background:
    """The named, referenced tasks of one key manager."""

    def __init__(self, target: Maintained, *, interval: float) -> None:
        self._target = target
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the periodic task on the running loop; idempotent."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name="tokengate-kms-maintain")

    async def stop(self) -> None:
        """Cancel both tasks and wait for them."""
        tasks = [t for t in (self._task, self._kick) if t is not None]
        self._task = self._kick = self._loop = None
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def refresh_soon(self) -> None:
        """Schedule an immediate refresh (thread-safe; no-op when not started)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._kick_refresh)

    def _kick_refresh(self) -> None:
        if self._loop is not None and (self._kick is None or self._kick.done()):
            self._kick = asyncio.create_task(self._refresh(), name="tokengate-kms-refresh")

    async def _refresh(self) -> None:
        try:
            await self._target.refresh()
        except KmsError as e:
            log.warning("kms: refresh after an unknown key version failed: %s", e)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._target.maintain()
            except KmsError as e:
                log.warning("kms: background maintenance failed: %s", e)
            except Exception:  # keep the loop alive; the error is logged, not swallowed
                log.exception("kms: background maintenance crashed")
