"""The worker's X25519 key pairs: one current, earlier ones for a grace period.

Rules (docs/tee-protocol.md, "Worker RPC"):
- Private keys live in memory only; nothing here is ever written or logged.
- :meth:`KeyRing.rotate` makes a new current key (generation + 1). The key
  it replaces stays usable for ``grace`` seconds, so envelopes already sealed
  to it (in flight, or from another gateway that attested earlier) still
  open; then it is dropped.
- Time is a monotonic clock, injected.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

DEFAULT_GRACE = 30.0


@dataclass(frozen=True, slots=True)
class WorkerKey:
    """One key pair of the worker and the generation it was made in."""

    private: X25519PrivateKey = field(repr=False)
    public: bytes
    generation: int

    @classmethod
    def generate(cls, generation: int) -> WorkerKey:
        """A fresh key pair for ``generation``."""
        private = X25519PrivateKey.generate()
        return cls(private, private.public_key().public_bytes_raw(), generation)


class KeyRing:
    """The current key and the replaced keys still inside their grace."""

    def __init__(
        self, *, grace: float = DEFAULT_GRACE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if grace < 0:
            raise ValueError("keys: grace must not be negative")
        self._grace = grace
        self._clock = clock
        self._current = WorkerKey.generate(0)
        self._previous: list[tuple[float, WorkerKey]] = []  # (dropped at, key)

    @property
    def current(self) -> WorkerKey:
        """The key new envelopes should be sealed to."""
        return self._current

    def rotate(self) -> WorkerKey:
        """Make a new current key; the old one stays usable for the grace period."""
        now = self._clock()
        self._prune(now)
        self._previous.append((now + self._grace, self._current))
        self._current = WorkerKey.generate(self._current.generation + 1)
        return self._current

    def find(self, public: bytes) -> WorkerKey | None:
        """The current or a still-graced key whose public half is ``public``."""
        self._prune(self._clock())
        found = None
        for key in (self._current, *(k for _, k in self._previous)):
            if hmac.compare_digest(key.public, public):
                found = key
        return found

    def live(self) -> list[WorkerKey]:
        """Every key that still opens envelopes, current first."""
        self._prune(self._clock())
        return [self._current, *(k for _, k in reversed(self._previous))]

    def _prune(self, now: float) -> None:
        self._previous = [(until, k) for until, k in self._previous if until > now]
