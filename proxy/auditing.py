"""The gateway's own audit events: start, stop and configuration reloads.

The checkpoint signer is a local Ed25519 key under the data dir for now
(created on first start in development; it must already exist in production).
Recording a reload that cannot be persisted refuses the reload.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audit.log import AuditLog
from proxy.readiness import ReadinessCheck
from proxy.settings import Settings
from tokengate import __version__


@dataclass(slots=True)
class GatewayAudit:
    """The worker's audit log plus the gateway events it records."""

    log: AuditLog

    async def record_start(self, settings: Settings, *, workers: int) -> None:
        """``gateway.start``: refuses to serve if it cannot be recorded."""
        await self.log.emit(
            "gateway.start",
            version=__version__,
            mode=settings.gateway.mode,
            workers=workers,
            config_digest=settings.digest,
        )

    async def record_stop(self, reason: str) -> None:
        """``gateway.stop``."""
        await self.log.emit("gateway.stop", reason=reason)

    async def record_reload(self, result: str, new: Settings | None, reason: str) -> None:
        """``policy.reload``; raising here refuses the reload."""
        await self.log.emit(
            "policy.reload",
            result=result,
            config_digest=new.digest if new is not None else None,
            files=len(new.files) if new is not None else 0,
            reason=reason,
        )

    def readiness_checks(self) -> Iterable[ReadinessCheck]:
        """The audit log is usable: not failed, not closed."""
        return (self.log.readiness_check(),)
