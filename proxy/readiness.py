"""Readiness checks: is every dependency the gateway needs reachable right now?

Each check is a small object with a name and an async probe; packages add
theirs (audit sink, keyring, session store) at start-up. Results are cached
for a second so a flood of probes does not become a flood of connections.
Answers name the checks and ok/failed only: no addresses, no error text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from proxy.config import Upstream


class ReadinessCheck(Protocol):
    """A dependency probe; ``check`` returns True when the dependency is usable."""

    @property
    def name(self) -> str:
        """Short, stable name shown in /readyz (no addresses)."""
        ...

    async def check(self) -> bool:
        """Probe once, quickly, with its own timeout."""
        ...


@dataclass(frozen=True, slots=True)
class TcpCheck:
    """An upstream is ready when a TCP connection to it opens."""

    name: str
    host: str
    port: int
    timeout: float = 1.0

    @classmethod
    def for_upstream(cls, name: str, upstream: Upstream) -> TcpCheck:
        """The TCP check for one configured upstream."""
        parts = urlsplit(upstream.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(name=f"upstream:{name}", host=parts.hostname or "", port=port)

    async def check(self) -> bool:
        """Open and close one connection."""
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True


@dataclass(slots=True)
class Readiness:
    """All registered checks, evaluated together with a short cache."""

    checks: Callable[[], Iterable[ReadinessCheck]]
    ttl: float = 1.0
    _cached: tuple[float, dict[str, bool]] | None = field(default=None)

    async def evaluate(self, *, now: float | None = None) -> dict[str, bool]:
        """``{check name: ok}`` for every check, at most ``ttl`` seconds old."""
        now = time.monotonic() if now is None else now
        if self._cached is not None and now - self._cached[0] < self.ttl:
            return self._cached[1]
        checks = list(self.checks())
        results = await asyncio.gather(*(c.check() for c in checks), return_exceptions=True)
        outcome = {c.name: r is True for c, r in zip(checks, results, strict=True)}
        self._cached = (now, outcome)
        return outcome
