"""Rate limit with lockout for the guessable factors (TOTP codes, recovery codes).

Rules:
- One failure counter per subject (``mfa:<subject>``), shared by TOTP and
  recovery codes, kept in the session store so every worker and replica sees
  it. ``max_failures`` failures within ``window`` seconds lock the subject
  for ``lock_for`` seconds.
- A locked subject is refused before its code is even looked at, so a right
  code during the lock is refused too (a brute force cannot learn anything
  from the lock period).
- A pass clears the counter. WebAuthn assertions cannot be guessed, so they
  neither count nor wait for the lock: a user whose TOTP is being hammered
  can still get in with a key.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.mfa.outcome import Method, MfaOutcome, MfaResult
from proxy.mfa.ports import AttemptGuard


@dataclass(frozen=True)
class Strike:
    """The failure count after one more failure, and the lock it caused (if any)."""

    failures: int
    locked_until: float | None


class Lockout:
    """Failure counting and the lock, over an :class:`AttemptGuard`."""

    def __init__(
        self, guard: AttemptGuard, *, max_failures: int, window: float, lock_for: float
    ) -> None:
        if max_failures < 1 or window <= 0 or lock_for <= 0:
            raise ValueError("mfa: lockout needs max_failures >= 1 and positive durations")
        self._guard = guard
        self._max = max_failures
        self._window = window
        self._lock_for = lock_for

    async def locked_until(self, subject: str, *, now: float) -> float | None:
        """When the subject's lock ends, or None if it may try a code now."""
        return await self._guard.locked_until(_key(subject), now=now)

    async def strike(self, subject: str, *, now: float) -> Strike:
        """Count one failure; the lock starts with the ``max_failures``-th."""
        failures = await self._guard.incr_failures(
            _key(subject), self._window, lock_after=self._max, lock_for=self._lock_for, now=now
        )
        if failures < self._max:
            return Strike(failures, None)
        until = await self._guard.locked_until(_key(subject), now=now)
        return Strike(failures, until if until is not None else now + self._lock_for)

    async def refusal(self, subject: str, method: Method, *, now: float) -> MfaResult | None:
        """A ``locked`` result if the subject is locked now, else None (go ahead)."""
        until = await self.locked_until(subject, now=now)
        if until is None:
            return None
        return MfaResult(MfaOutcome.LOCKED, subject, method, "locked", locked_until=until)

    async def failed(self, subject: str, method: Method, *, now: float) -> MfaResult:
        """Count a wrong code: ``failed``, or ``locked`` if this failure started the lock."""
        strike = await self.strike(subject, now=now)
        outcome = MfaOutcome.FAILED if strike.locked_until is None else MfaOutcome.LOCKED
        return MfaResult(
            outcome,
            subject,
            method,
            "bad_code",
            failures=strike.failures,
            locked_until=strike.locked_until,
        )

    async def clear(self, subject: str) -> None:
        """Forget the failures after a pass."""
        await self._guard.reset(_key(subject))

    async def unlock(self, subject: str) -> None:
        """Clear failures and lock (an operator's act, audited by the caller)."""
        await self._guard.reset(_key(subject), unlock=True)


def _key(subject: str) -> str:
    return f"mfa:{subject}"
