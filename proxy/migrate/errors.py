"""Errors of the migration: one base; messages name tables and columns, never values."""

from __future__ import annotations

from tokengate.errors import GatewayError


class MigrateError(GatewayError):
    """The migration cannot go on (bad identifier, unreachable database, failed batch)."""

    code = "migrate_error"
    public = True
