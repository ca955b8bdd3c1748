"""Registered JWT claim checks (RFC 7519 section 4.1) and the jti replay boundary.

Rules:

- Time is injected (``now``, seconds since the epoch); leeway is bounded
  (default 30 s, at most 120 s) so a config cannot quietly disable expiry.
- ``exp``, ``nbf``, ``iat`` are NumericDates: finite JSON numbers, never
  booleans or strings. A token is refused once ``now >= exp + leeway``, before
  ``nbf - leeway``, and when ``iat`` lies more than ``leeway`` in the future.
- ``iss`` is compared exactly; ``aud`` is a string equal to the expected
  audience or a list containing it exactly.
- Required claims must be present; typed accessors refuse wrong types.

Every failure raises :class:`ClaimsError` with a short log-only reason.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

from proxy.auth.errors import AuthError

DEFAULT_LEEWAY: Final = 30.0
MAX_LEEWAY: Final = 120.0


class ClaimsError(AuthError):
    """The claims of a verified token are not acceptable (opaque to clients)."""

    code = "invalid_token"

    def __init__(self, reason: str) -> None:
        super().__init__("claims: token not acceptable", reason=reason)


class ReplayGuard(Protocol):
    """Remembers single-use values (jti, nonces) across requests and replicas."""

    async def first_use(self, namespace: str, value: str, ttl: float) -> bool:
        """True the first time ``(namespace, value)`` is seen within ``ttl`` seconds."""
        ...


def check_leeway(leeway: float) -> float:
    """``leeway`` if it is within ``[0, MAX_LEEWAY]``; ValueError otherwise (config time)."""
    if not 0 <= leeway <= MAX_LEEWAY:
        raise ValueError(f"claims: leeway must be between 0 and {MAX_LEEWAY:g} seconds")
    return float(leeway)


def check_registered(
    claims: Mapping[str, object],
    *,
    now: float,
    audience: str,
    issuer: str | None = None,
    leeway: float = DEFAULT_LEEWAY,
    required: Iterable[str] = ("exp", "iat"),
) -> None:
    """Check presence of ``required`` and the registered claims that are present."""
    leeway = check_leeway(leeway)
    for name in required:
        if name not in claims:
            raise ClaimsError(f"missing claim {name}")
    if issuer is not None and claims.get("iss") != issuer:
        raise ClaimsError("wrong issuer")
    if not audience_matches(claims.get("aud"), audience):
        raise ClaimsError("wrong audience")
    exp = optional_time(claims, "exp")
    nbf = optional_time(claims, "nbf")
    iat = optional_time(claims, "iat")
    if exp is not None and now >= exp + leeway:
        raise ClaimsError("expired")
    if nbf is not None and now < nbf - leeway:
        raise ClaimsError("not yet valid")
    if iat is not None and iat > now + leeway:
        raise ClaimsError("issued in the future")
    if exp is not None and iat is not None and exp <= iat:
        raise ClaimsError("exp not after iat")


def audience_matches(value: object, audience: str) -> bool:
    """``aud`` as a string equal to ``audience``, or a list of strings holding it."""
    if isinstance(value, str):
        return value == audience
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return audience in value
    return False


def optional_time(claims: Mapping[str, object], name: str) -> float | None:
    """A NumericDate claim, or None when absent."""
    if name not in claims:
        return None
    return numeric_date(claims, name)


def numeric_date(claims: Mapping[str, object], name: str) -> float:
    """A required NumericDate claim: a finite non-negative number, not a bool."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimsError(f"claim {name} is not a numeric date")
    if not math.isfinite(value) or value < 0:
        raise ClaimsError(f"claim {name} is not a numeric date")
    return float(value)


def string(claims: Mapping[str, object], name: str, *, max_length: int = 1024) -> str:
    """A required non-empty string claim of bounded length."""
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise ClaimsError(f"claim {name} is not a string")
    return value


def optional_string(claims: Mapping[str, object], name: str) -> str | None:
    """A string claim that may be absent or null."""
    if claims.get(name) is None:
        return None
    return string(claims, name)


def string_list(
    claims: Mapping[str, object], name: str, *, required: bool = True, max_items: int = 256
) -> tuple[str, ...]:
    """A list-of-strings claim (absent means empty when not ``required``)."""
    if name not in claims and not required:
        return ()
    value = claims.get(name)
    if not isinstance(value, list) or len(value) > max_items:
        raise ClaimsError(f"claim {name} is not a list of strings")
    if not all(isinstance(v, str) and v and len(v) <= 256 for v in value):
        raise ClaimsError(f"claim {name} is not a list of strings")
    return tuple(value)


class MemoryReplayGuard:
    """A bounded in-process :class:`ReplayGuard` (one worker only; tests, embedded).

    Entries expire after their ttl. When full of live entries it fails closed
    (every new value counts as seen) rather than forget a value that could then
    be replayed. Several workers or replicas need the session store's guard.
    """

    def __init__(self, *, now: Callable[[], float], max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("claims: replay guard needs room for at least one entry")
        self._now = now
        self._max = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._expiries: list[tuple[float, tuple[str, str]]] = []

    async def first_use(self, namespace: str, value: str, ttl: float) -> bool:
        now = self._now()
        self._purge(now)
        key = (namespace, value)
        if key in self._seen or len(self._seen) >= self._max:
            return False
        self._seen[key] = now + ttl
        heapq.heappush(self._expiries, (now + ttl, key))
        return True

    def _purge(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, key = heapq.heappop(self._expiries)
            self._seen.pop(key, None)
