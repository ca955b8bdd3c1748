"""Audited session administration: list, revoke one, revoke a user, revoke all.

Shared by the admin API and ``tokengate sessions``. The rules:

- a revoke is recorded with ``result: "requested"`` BEFORE it takes effect; if
  that entry cannot be persisted the AuditError propagates and nothing is
  revoked (the caller answers 503);
- once the store has answered, ``"ok"`` (with the count) or ``"failed"`` (with
  the error code) is recorded. A revoke that happened stays reported as done
  even if that second entry cannot be written: the first one already names it,
  and saying "failed" would send an operator chasing a live session that is gone;
- a listing is recorded (with its count) before it is returned; no entry, no listing.

Sessions are named in the log by :func:`~proxy.adminapi.listing.sid_hash`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from audit.auditor import Auditor
from audit.schema import AuditValue
from proxy.adminapi.keys import Role
from proxy.adminapi.listing import sid_hash
from proxy.adminapi.recorder import ActRecorder
from proxy.sessions.model import Session
from proxy.sessions.store import SessionStore
from tokengate.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``apikey:<name>`` with the key's role, or ``cli:<login>``."""

    name: str
    role: Role | None = None
    request_id: str | None = None

    def fields(self) -> dict[str, AuditValue]:
        """The audit fields naming this actor."""
        return {
            "actor": self.name,
            "role": self.role.value if self.role else None,
            "request_id": self.request_id,
        }


class SessionAdmin:
    """The session store behind an audit trail."""

    def __init__(
        self, store: SessionStore, auditor: Auditor, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._auditor = auditor
        self._record = ActRecorder(auditor)
        self._clock = clock

    async def list_sessions(self, actor: Actor, sub: str) -> list[Session]:
        """The live sessions of ``sub``, oldest first, once the listing is recorded."""
        sessions = await self._store.list_sessions(sub, now=self._clock())
        await self._record.emit(
            "admin.sessions_list", sub=sub, count=len(sessions), **actor.fields()
        )
        return sessions

    async def revoke_session(self, actor: Actor, sid: str, *, reason: str | None = None) -> bool:
        """Revoke the session ``sid``; True if it existed."""
        fields: dict[str, AuditValue] = {"sid_hash": sid_hash(sid), "reason": reason}
        return await self._revoke_one(actor, sid, fields)

    async def revoke_listed(
        self, actor: Actor, sub: str, hashed: str, *, reason: str | None = None
    ) -> bool:
        """Revoke the live session of ``sub`` whose sid_hash is ``hashed``; False if none."""
        sessions = await self._store.list_sessions(sub, now=self._clock())
        found = None
        for s in sessions:
            found = s.sid if hmac.compare_digest(sid_hash(s.sid), hashed) else found
        fields: dict[str, AuditValue] = {"sid_hash": hashed, "sub": sub, "reason": reason}
        return await self._revoke_one(actor, found, fields)

    async def revoke_user(self, actor: Actor, sub: str, *, reason: str | None = None) -> int:
        """Revoke every session of ``sub``; the number revoked."""
        fields: dict[str, AuditValue] = {"sub": sub, "reason": reason, **actor.fields()}
        await self._record.emit("admin.user_revoke", result="requested", **fields)
        try:
            count = await self._store.revoke_user(sub, now=self._clock())
        except GatewayError as e:
            await self._record.failed("admin.user_revoke", fields, e)
            raise
        await self._record.done("admin.user_revoke", {**fields, "count": count})
        return count

    async def revoke_all(self, actor: Actor, *, reason: str | None = None) -> float:
        """Revoke every session created until now; that moment (POSIX seconds)."""
        fields: dict[str, AuditValue] = {"reason": reason, **actor.fields()}
        await self._record.emit("admin.all_revoke", result="requested", **fields)
        cutoff = self._clock()
        try:
            await self._store.revoke_all(now=cutoff)
        except GatewayError as e:
            await self._record.failed("admin.all_revoke", fields, e)
            raise
        await self._record.done("admin.all_revoke", fields)
        return cutoff

    async def _revoke_one(
        self, actor: Actor, sid: str | None, fields: dict[str, AuditValue]
    ) -> bool:
        fields = {**fields, **actor.fields()}
        await self._record.emit("admin.session_revoke", result="requested", **fields)
        try:
            revoked = sid is not None and await self._store.revoke(sid)
        except GatewayError as e:
            await self._record.failed("admin.session_revoke", fields, e)
            raise
        await self._record.done("admin.session_revoke", {**fields, "revoked": revoked})
        return revoked
