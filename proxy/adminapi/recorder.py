"""How an administrative act is written to the audit log: requested, then ok or failed.

The ``requested`` entry is written before the act (an AuditError refuses the
act); the outcome afterwards. An outcome that cannot be recorded is logged and
does not undo or hide an act that already happened. Fields that are None are
left out (absent, not null, in the log).
"""

from __future__ import annotations

import logging

from audit.auditor import Auditor
from audit.errors import AuditError
from audit.schema import AuditValue
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.adminapi")


class ActRecorder:
    """Audit entries of one kind of administrative act."""

    def __init__(self, auditor: Auditor) -> None:
        self._auditor = auditor

    async def emit(self, event: str, **fields: AuditValue) -> None:
        """Emit ``event`` without the fields that are None; raises if it is not persisted."""
        await self._auditor.emit(event, **{k: v for k, v in fields.items() if v is not None})

    async def done(self, event: str, fields: dict[str, AuditValue]) -> None:
        """Record that the act took effect (a failure to record is logged, not raised)."""
        try:
            await self.emit(event, result="ok", **fields)
        except AuditError as e:
            log.warning("%s took effect but its outcome was not recorded: %s", event, e)

    async def failed(self, event: str, fields: dict[str, AuditValue], error: GatewayError) -> None:
        """Record that the act failed with ``error`` (a failure to record is logged)."""
        try:
            await self.emit(event, result="failed", error=error.code, **fields)
        except AuditError as e:
            log.warning("%s failed and the failure was not recorded: %s", event, e)
