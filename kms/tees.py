"""Registry administration: register, retire, read TEEs, each act audited before it takes effect.

- ``register`` validates the body into a :class:`~tee.registry.TeeEntry`,
  refuses an id that was ever used (409 ``tee_exists``), writes
  ``kms.tee_register`` and only then stores the entry.
- ``retire`` writes ``kms.tee_retire`` (``requested``), retires the entry
  (final), revokes its sessions and unreleased grants through the broker
  (``kms.revoke``, reason ``retire``) and writes ``kms.tee_retire`` (``ok``)
  with the counts. The broker re-reads the registry on every call, so a
  retired TEE is refused even if the revocation step failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from kms.auditing import KmsAudit
from kms.broker import Broker
from kms.errors import refused
from tee.registry import TeeEntry, TeeRegistry, new_entry


class TeeAdmin:
    """The registry's admin acts."""

    def __init__(
        self,
        registry: TeeRegistry,
        broker: Broker,
        audit: KmsAudit,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self._registry = registry
        self._audit = audit
        self._broker = broker
        self._now = now

    async def register(self, actor: str, body: Mapping[str, object]) -> TeeEntry:
        """Add a TEE; 400 for a bad entry, 409 ``tee_exists`` for an id used before."""
        tee_id = body.get("id")
        fields = {"actor": actor, "tee_id": tee_id if isinstance(tee_id, str) else None}
        async with self._audit.refusals("register", **fields):
            entry = new_entry(body, now=self._now())
            if await self._registry.get(entry.id) is not None:
                raise refused(
                    "tee_exists", "registry: this TEE id is already registered", status=409
                )
            await self._audit.emit(
                "kms.tee_register",
                actor=actor,
                tee_id=entry.id,
                platform=entry.platform.value,
                measurements=sorted(entry.measurements),
                tenants=list(entry.tenants),
                jobs=list(entry.jobs) if entry.jobs is not None else None,
                allow_debug=entry.allow_debug,
                accepted_tcb=list(entry.accepted_tcb),
            )
            return await self._registry.register(entry)

    async def retire(self, actor: str, tee_id: str) -> TeeEntry:
        """Retire a TEE (final) and revoke its sessions and grants; 404 ``unknown_tee``."""
        async with self._audit.refusals("retire", actor=actor, tee_id=tee_id):
            current = await self._registry.get(tee_id)
            if current is None:
                raise refused("unknown_tee", "kms: unknown TEE", status=404)
        platform = current.platform.value
        await self._audit.emit(
            "kms.tee_retire", actor=actor, tee_id=tee_id, platform=platform, result="requested"
        )
        entry = await self._registry.retire(tee_id, now=self._now())
        sessions, grants = await self._broker.revoke(actor, tee_id, None, reason="retire")
        await self._audit.emit(
            "kms.tee_retire",
            actor=actor,
            tee_id=tee_id,
            platform=platform,
            result="ok",
            revoked_sessions=sessions,
            revoked_grants=grants,
        )
        return entry

    async def get(self, actor: str, tee_id: str) -> TeeEntry:
        """One entry (active or retired); 404 ``unknown_tee``."""
        async with self._audit.refusals("read", actor=actor, tee_id=tee_id):
            entry = await self._registry.get(tee_id)
            if entry is None:
                raise refused("unknown_tee", "kms: unknown TEE", status=404)
            return entry

    async def entries(self) -> list[TeeEntry]:
        """Every entry, by id."""
        return await self._registry.entries()
