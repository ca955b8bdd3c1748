"""Rate limiting of ``last_seen`` writes: at most one per session per interval per process.

Every request of a signed-in user would otherwise write to the store. The
limiter remembers, per session, the newest ``last_seen`` this process wrote or
read; :meth:`TouchLimiter.due` says whether ``now`` is far enough past it to be
worth a write. Reads seed it too, so a session another replica touched a moment
ago is not written again here. The table is bounded (least recently used
entries go first); forgetting an entry only costs one extra write.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

DEFAULT_MAX_ENTRIES: Final = 100_000


class TouchLimiter:
    """Per-process table of the newest known ``last_seen`` of each session."""

    def __init__(self, interval: float, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if interval < 0 or max_entries < 1:
            raise ValueError("sessions: touch interval must be >= 0 and the table non-empty")
        self._interval = interval
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    @property
    def interval(self) -> float:
        """Seconds between two writes of one session's ``last_seen``."""
        return self._interval

    def due(self, sid: str, now: float) -> bool:
        """Whether a write of ``last_seen = now`` is due for ``sid``."""
        known = self._seen.get(sid)
        return known is None or now - known >= self._interval

    def record(self, sid: str, last_seen: float) -> None:
        """Remember ``last_seen`` (written here or read from the store); keeps the newest."""
        known = self._seen.pop(sid, None)
        self._seen[sid] = last_seen if known is None else max(known, last_seen)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def forget(self, sid: str) -> None:
        """Drop ``sid`` (revoked or expired)."""
        self._seen.pop(sid, None)
