"""What kms_client needs from the audit log: one ``emit`` coroutine.

The gateway hands in its audit log (``audit.open_audit_log``); kms_client
depends on nothing else of the audit package. An ``emit`` that raises means
the entry was not persisted, and the act it describes is refused.
"""

from __future__ import annotations

from typing import Protocol

type AuditValue = str | int | bool | list[str] | None


class Auditor(Protocol):
    """Persists one declared audit event (events are declared in ``audit/events.py``)."""

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        """Append ``event`` with ``fields``; raise if it cannot be persisted."""
        ...
