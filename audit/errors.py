"""Errors of the audit package.

``audit`` imports nothing of the project, so these do not subclass
``tokengate.errors.GatewayError``; they carry the same ``status`` and ``code``
attributes so the gateway's error handling treats them alike (duck typing).
Messages are short, lowercase, prefixed ``audit:`` and never contain a field
value, only event and field names.
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of every deliberate audit error: the act being audited must be refused."""

    status: int = 503
    code: str = "audit_unavailable"
    public: bool = False


class AuditUnavailableError(AuditError):
    """An entry could not be persisted, or the log is closed or failed (fail closed)."""


class AuditSchemaError(AuditError):
    """An event or field outside the declared schemas: a bug in the caller, refused."""

    status = 500
    code = "audit_schema_violation"


class AuditKeyError(AuditError):
    """The checkpoint key (or a verification key) is missing, unreadable or not Ed25519."""

    status = 500
    code = "audit_key_error"


class AuditFormatError(AuditError):
    """Bytes that are not a well-formed, canonical audit entry or checkpoint record."""

    status = 500
    code = "audit_format_error"
