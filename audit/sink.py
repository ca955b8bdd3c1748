"""The boundary between the audit log and where its bytes go.

An entry sink stores chain entries; a checkpoint sink stores signed
checkpoints and must be independent of the entry sinks it vouches for (another
directory, ideally another volume, or PostgreSQL). Rules every sink keeps:
- a write returns only once its data is durable (fsync, COMMIT); otherwise it
  raises, and the audit log fails closed;
- writes of one sink never run concurrently (the log has one flusher);
- every network call has a timeout; blocking file IO runs off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from audit.checkpoint import Checkpoint
from audit.entry import Entry


class EntrySink(Protocol):
    """Durable storage for chain entries."""

    @property
    def name(self) -> str:
        """Short label for errors and logs (``file``, ``postgresql``); no secrets."""
        ...

    async def write_entries(self, entries: Sequence[Entry]) -> None:
        """Store ``entries`` (consecutive, in order) durably, or raise."""
        ...

    async def close(self) -> None:
        """Release files and connections; idempotent."""
        ...


class CheckpointSink(Protocol):
    """Durable, independent storage for signed checkpoints."""

    @property
    def name(self) -> str:
        """Short label for errors and logs; no secrets."""
        ...

    async def write_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Store ``checkpoints`` durably, or raise."""
        ...

    async def close(self) -> None:
        """Release files and connections; idempotent."""
        ...
