"""The one interface other packages use: ``Auditor.emit``.

Every package that performs a privileged act takes an ``Auditor`` and awaits
``emit(event, **fields)`` before it lets the act take effect. ``emit`` returns
only once the entry is durably persisted, and raises an ``AuditError`` (duck
typed: ``status`` 503, ``code`` ``audit_unavailable``) otherwise: the act must
then be refused. Events and their fields are declared in :mod:`audit.events`.
"""

from __future__ import annotations

from typing import Protocol

from audit.schema import AuditValue


class Auditor(Protocol):
    """Something that durably records audit events (``AuditLog`` in production)."""

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        """Record ``event``; return once it is durable, else raise AuditError."""
        ...
