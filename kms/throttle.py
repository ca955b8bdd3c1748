"""A per-peer token bucket for the KMS's unauthenticated routes (no IO, injectable clock).

Rules:
- A peer is the socket's remote address (never a forwarded header); IPv6
  peers are keyed by their /64, so one host cannot mint fresh buckets by
  cycling addresses of its own prefix.
- Each peer's bucket holds up to ``burst`` tokens and refills at ``rate``
  per second; a call takes one token or is refused with the seconds until
  the next token (``Retry-After``).
- Memory is bounded: at most ``max_peers`` buckets. Idle peers (bucket full,
  nothing unreported) are evicted oldest first; when the table is still full
  new peers share one overflow bucket (fail closed: a flood from many
  addresses throttles newcomers, it never lifts the limit).
- Refusals are counted, not reported one by one: :meth:`PeerThrottle.refuse`
  says when a peer's count is due (at most once per ``report_every``
  seconds per peer), :meth:`PeerThrottle.drain` hands out every count not
  yet reported (periodically and at shutdown).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

OVERFLOW: Final = "(overflow)"
"""The shared key of new peers while the table is full of active peers."""
EVICTED: Final = "(evicted)"
"""The key under which counts of peers evicted before being reported are drained."""


def peer_key(address: str | None) -> str:
    """The throttle key of a remote address: IPv4 as is, IPv6 as its /64, else ``unknown``."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    refused: int = 0
    reported: float = -math.inf


class PeerThrottle:
    """Token buckets keyed by peer, with aggregated refusal counts."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_peers: int = 10_000,
        report_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_peers < 1 or report_every <= 0:
            raise ValueError("kms: throttle: rate, burst, max_peers and report_every must be > 0")
        self._rate = rate
        self._burst = float(burst)
        self._max = max_peers
        self._every = report_every
        self._clock = clock
        self._peers: OrderedDict[str, _Bucket] = OrderedDict()
        self._evicted = 0

    def __len__(self) -> int:
        return len(self._peers)

    def take(self, peer: str) -> float | None:
        """None when ``peer`` may proceed (a token taken), else seconds until it may retry."""
        now = self._clock()
        bucket = self._bucket(peer, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._rate

    def refuse(self, peer: str) -> int | None:
        """Count one refusal of ``peer``; the count to report now, or None (not due yet)."""
        now = self._clock()
        bucket = self._bucket(peer, now)
        bucket.refused += 1
        if now - bucket.reported < self._every:
            return None
        count, bucket.refused, bucket.reported = bucket.refused, 0, now
        return count

    def drain(self) -> list[tuple[str, int]]:
        """Every refusal count not yet reported, by peer (the counts restart at zero)."""
        now = self._clock()
        out: list[tuple[str, int]] = []
        for key, bucket in self._peers.items():
            if bucket.refused:
                out.append((key, bucket.refused))
                bucket.refused, bucket.reported = 0, now
        if self._evicted:
            out.append((EVICTED, self._evicted))
            self._evicted = 0
        return out

    def _bucket(self, peer: str, now: float) -> _Bucket:
        bucket = self._peers.get(peer)
        if bucket is not None:
            self._peers.move_to_end(peer)
            return bucket
        self._evict_idle(now)
        if len(self._peers) >= self._max:
            peer = OVERFLOW
            bucket = self._peers.get(peer)
            if bucket is not None:
                self._peers.move_to_end(peer)
                return bucket
            self._drop_oldest()
        bucket = _Bucket(tokens=self._burst, updated=now)
        self._peers[peer] = bucket
        return bucket

    def _evict_idle(self, now: float) -> None:
        """Drop least recently seen peers whose bucket has refilled and whose count is reported."""
        while self._peers:
            key, oldest = next(iter(self._peers.items()))
            full = oldest.tokens + (now - oldest.updated) * self._rate >= self._burst
            if not full or oldest.refused or now - oldest.reported < self._every:
                return
            del self._peers[key]

    def _drop_oldest(self) -> None:
        """Make room for the overflow bucket itself (its count is kept under EVICTED)."""
        _, bucket = self._peers.popitem(last=False)
        self._evicted += bucket.refused
