"""The session store contract: one Protocol, three backends chosen by URI.

Backends: :class:`~proxy.sessions.memory_store.MemorySessionStore` (``memory:``,
one worker only), :class:`~proxy.sessions.sqlite_store.SqliteSessionStore`
(``sqlite:``, the embedded default for many workers on one host) and
:class:`~proxy.sessions.redis_store.RedisSessionStore` (``redis://``,
``rediss://``, ``redis+sentinel://``, ``redis+cluster://``, for replicas).

Every method takes an optional ``now`` (POSIX seconds) so tests drive the clock;
the rules it is checked against are in :mod:`proxy.sessions.rules` and
:mod:`proxy.sessions.refresh`. Any store failure raises
:class:`~proxy.sessions.errors.SessionStoreUnavailable` (503): a store that
cannot answer never lets a request through.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Final, Protocol

from proxy.sessions.model import (
    NewSession,
    RefreshResult,
    Session,
    SessionGrant,
    new_family_id,
    new_sid,
)
from proxy.sessions.refresh import Family, new_refresh_token

_NAMESPACE_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_PREFIX_RE: Final = re.compile(r"^[A-Za-z0-9_:.-]{0,64}$")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Tunables every backend shares (built from :class:`SessionStoreConfig`)."""

    idle_timeout: float = 1800.0
    absolute_lifetime: float = 43200.0
    refresh_grace: float = 10.0
    touch_interval: float = 60.0
    key_prefix: str = "tokengate:sessions:"
    timeout: float = 2.0
    revoke_replicas: int | None = None  # None: 1 with Sentinel, else 0
    revoke_wait_timeout: float = 1.0
    lock_ttl: float = 5.0

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0 or self.absolute_lifetime <= 0:
            raise ValueError("sessions: idle_timeout and absolute_lifetime must be positive")
        if not 0 <= self.refresh_grace <= 60:
            raise ValueError("sessions: refresh_grace must be between 0 and 60 seconds")
        if not 0 <= self.touch_interval <= self.idle_timeout / 2:
            raise ValueError("sessions: touch_interval must be at most half the idle_timeout")
        if not _PREFIX_RE.match(self.key_prefix):
            raise ValueError("sessions: key_prefix may hold letters, digits and _:.- only")
        if self.timeout <= 0 or self.revoke_wait_timeout <= 0 or self.lock_ttl <= 0:
            raise ValueError("sessions: timeouts must be positive")
        if self.revoke_replicas is not None and self.revoke_replicas < 0:
            raise ValueError("sessions: revoke_replicas cannot be negative")


def clock(now: float | None) -> float:
    """``now`` if the caller injected one, else the wall clock."""
    return time.time() if now is None else now


def check_namespace(namespace: str) -> str:
    """A replay-guard namespace (``dpop-jti``, ``login-jti``, ``totp``): short, lowercase."""
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError("sessions: namespace must match [a-z0-9][a-z0-9_.-]{0,31}")
    return namespace


def digest(value: str) -> str:
    """Hex SHA-256 of a caller value: stores never keep a jti, code or counter key verbatim."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def subject_key(sub: str) -> str:
    """The per-user key part: a hash, so no e-mail address ends up in a key name."""
    return hashlib.sha256(b"tokengate/sub/v1\x00" + sub.encode("utf-8")).hexdigest()[:32]


def start_session(
    grant: SessionGrant, settings: StoreSettings, now: float
) -> tuple[NewSession, Family]:
    """A fresh session for ``grant`` at ``now`` and its family with the first token."""
    token, token_hash = new_refresh_token()
    session = Session(
        sid=new_sid(),
        sub=grant.sub,
        tenant=grant.tenant,
        roles=grant.roles,
        amr=grant.amr,
        acr=grant.acr,
        auth_time=int(now) if grant.auth_time is None else grant.auth_time,
        created=now,
        last_seen=now,
        absolute_expiry=now + settings.absolute_lifetime,
        idle_timeout=settings.idle_timeout,
        family_id=new_family_id(),
        cnf_jkt=grant.cnf_jkt,
        mfa_enrolled=grant.mfa_enrolled,
        mfa_time=grant.mfa_time,
    )
    return NewSession(session, token), Family(current=token_hash)


class SessionStore(Protocol):
    """Sessions, refresh-token families, revocation, replay guards and failure counters."""

    @property
    def supports_multiple_workers(self) -> bool:
        """False for stores that live in one process (``memory:``)."""
        ...

    @property
    def round_trips(self) -> int:
        """Network or database round trips made so far (memory: always 0)."""
        ...

    @property
    def description(self) -> str:
        """Backend and location for logs, without credentials."""
        ...

    async def open(self) -> None:
        """Connect (and create the schema); SessionStoreUnavailable if unreachable."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...

    async def create(self, grant: SessionGrant, *, now: float | None = None) -> NewSession:
        """A new session (fresh sid and family) and its first refresh token."""
        ...

    async def get(self, sid: str, *, now: float | None = None) -> Session | None:
        """The session if it is valid at ``now`` (exists, not idle/expired/revoked), else None."""
        ...

    async def touch(self, sid: str, *, now: float | None = None) -> bool:
        """Move ``last_seen`` to ``now`` if a write is due; True if written."""
        ...

    async def rotate(self, refresh_token: str, *, now: float | None = None) -> RefreshResult:
        """Apply the rotation rule; RefreshRejected / RefreshReuseDetected when it refuses."""
        ...

    async def revoke(self, sid: str) -> bool:
        """Revoke one session (and its family); True if it existed."""
        ...

    async def revoke_user(self, sub: str, *, now: float | None = None) -> int:
        """Revoke every session of ``sub`` created until ``now``; the number deleted."""
        ...

    async def revoke_all(self, *, now: float | None = None) -> None:
        """Revoke every session created until ``now`` (one write)."""
        ...

    async def is_revoked(
        self, sid: str, sub: str, issued_at: float, *, now: float | None = None
    ) -> bool:
        """The per-request check: at most one pipelined round trip."""
        ...

    async def list_sessions(self, sub: str, *, now: float | None = None) -> list[Session]:
        """The valid sessions of ``sub``, oldest first."""
        ...

    async def first_use(
        self, namespace: str, value: str, ttl: float, *, now: float | None = None
    ) -> bool:
        """True the first time ``value`` is seen in ``namespace`` within ``ttl`` seconds."""
        ...

    async def incr_failures(
        self,
        key: str,
        window: float,
        *,
        lock_after: int | None = None,
        lock_for: float = 0.0,
        now: float | None = None,
    ) -> int:
        """Count a failure in a fixed window; at ``lock_after`` failures lock ``key``."""
        ...

    async def reset(self, key: str, *, unlock: bool = False) -> None:
        """Clear the failure count of ``key`` (and its lock with ``unlock``)."""
        ...

    async def locked_until(self, key: str, *, now: float | None = None) -> float | None:
        """When the lock on ``key`` ends, or None if it is not locked at ``now``."""
        ...

    async def purge_expired(self, *, now: float | None = None) -> int:
        """Delete expired records (Redis expires keys itself); the number deleted."""
        ...
