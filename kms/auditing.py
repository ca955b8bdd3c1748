"""The KMS's audit discipline: an act happens only once its entry is durable; refusals are audited.

:meth:`KmsAudit.emit` writes one entry and turns any failure into 503
``unavailable`` (the act it describes must then not take effect).
:meth:`KmsAudit.refusals` wraps a block: a deliberate refusal (a
``BrokerError`` or ``TeeError`` below 500) leaving it is recorded as
``kms.refuse`` with the block's context fields, then re-raised. Fields that
are None are left out. No key, session, nonce or evidence is ever a field.
"""

from __future__ import annotations

import logging
from types import TracebackType

from audit.auditor import Auditor
from audit.schema import AuditValue
from kms.errors import BrokerError, Unavailable
from tee.errors import TeeError

log = logging.getLogger("tokengate.kms.audit")


class KmsAudit:
    """The audit log as the KMS uses it."""

    def __init__(self, auditor: Auditor) -> None:
        self._auditor = auditor

    async def emit(self, event: str, **fields: AuditValue) -> None:
        """Persist ``event``; Unavailable (503) when it cannot be."""
        try:
            await self._auditor.emit(event, **{k: v for k, v in fields.items() if v is not None})
        except Exception as e:
            log.error("kms: audit entry %s not persisted (%s)", event, type(e).__name__)
            raise Unavailable("kms: the audit log is unavailable; nothing was done") from e

    async def refusal(self, op: str, code: str, **fields: AuditValue) -> None:
        """``kms.refuse`` for one refusal."""
        await self.emit("kms.refuse", op=op, code=code[:64], **fields)

    def refusals(self, op: str, **fields: AuditValue) -> Refusals:
        """A block whose deliberate refusals are audited as ``kms.refuse``."""
        return Refusals(self, op, dict(fields))


class Refusals:
    """``async with audit.refusals(op, ...) as fields``: context may be added as it is learnt."""

    def __init__(self, audit: KmsAudit, op: str, fields: dict[str, AuditValue]) -> None:
        self._audit = audit
        self._op = op
        self._fields = fields

    async def __aenter__(self) -> dict[str, AuditValue]:
        return self._fields

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(error, BrokerError | TeeError) and error.status < 500:
            await self._audit.refusal(self._op, error.code, **self._fields)
