"""``business_hours``: allow only between two UTC hours (a ``tokengate.authorizers`` plugin)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from plugins.base import Decision, Subject
from vault.api import RecordInfo


class BusinessHours:
    """Allow when ``start <= UTC hour of now < end``."""

    name: ClassVar[str] = "business_hours"

    def __init__(self) -> None:
        self._start = 9
        self._end = 17

    def configure(self, options: Mapping[str, object]) -> None:
        """``start`` and ``end``: whole hours, 0 <= start < end <= 24."""
        unknown = set(options) - {"start", "end"}
        if unknown:
            raise ValueError(f"business_hours: unknown option '{sorted(unknown)[0]}'")
        start, end = options.get("start", 9), options.get("end", 17)
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= 24:
            raise ValueError("business_hours: need whole hours 0 <= start < end <= 24")
        self._start, self._end = start, end

    def decide(self, subject: Subject, record: RecordInfo, now: float) -> Decision:
        """Pure: the hour comes from ``now``, never from the clock."""
        hour = int(now // 3600) % 24
        if self._start <= hour < self._end:
            return Decision.allowed("business_hours")
        return Decision.denied("outside_hours")
