"""The tamper-evident audit log: hash-chained entries, signed checkpoints, sinks, verifier.

Other packages depend on :class:`Auditor` (``await auditor.emit(event,
**fields)``) and declare their events in :mod:`audit.events`. This package
imports nothing of the rest of tokengate: its checkpoint signer is handed in,
and its errors carry ``status``/``code`` by duck typing. See docs/audit.md.
"""

from __future__ import annotations

from audit.auditor import Auditor
from audit.config import AuditConfig, PostgresAuditConfig
from audit.errors import (
    AuditError,
    AuditFormatError,
    AuditKeyError,
    AuditSchemaError,
    AuditUnavailableError,
)
from audit.events import declared_events
from audit.log import AuditLog, open_audit_log
from audit.schema import AuditValue, EventSchema, FieldSpec
from audit.signer import CheckpointSigner, Ed25519CheckpointSigner

__all__ = [
    "AuditConfig",
    "AuditError",
    "AuditFormatError",
    "AuditKeyError",
    "AuditLog",
    "AuditSchemaError",
    "AuditUnavailableError",
    "AuditValue",
    "Auditor",
    "CheckpointSigner",
    "Ed25519CheckpointSigner",
    "EventSchema",
    "FieldSpec",
    "PostgresAuditConfig",
    "declared_events",
    "open_audit_log",
]
