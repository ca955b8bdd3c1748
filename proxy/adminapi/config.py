"""The ``admin.api:`` section of gateway.yaml: the admin API switch and its keys.

Keys are listed by name, role and the hex SHA-256 of the key; the key itself
is never in the file. ``tokengate admin key create --name NAME --role ROLE``
prints a new key once and the line to paste here. Names appear in the audit
log, so they name a person or a system (``alice``, ``ci-deploy``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from policy.types import StrictModel
from proxy.adminapi.keys import ApiKey, KeyTable, Role


class AdminKeyConfig(StrictModel):
    """One admin API key: who holds it, what it may do, the SHA-256 of the key."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
        description="holder of the key, as written to the audit log",
    )
    role: Literal["admin", "operator", "auditor"] = Field(
        description="auditor: read; operator: + revoke a session or user; admin: + revoke all"
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key (from 'admin key create')"
    )


class AdminApiConfig(StrictModel):
    """The session administration API on the admin listener."""

    enabled: bool = Field(True, description="serve the admin API (routes under /.tokengate/admin/)")
    keys: list[AdminKeyConfig] = Field(
        default_factory=list, description="API keys allowed to call it (none: every call is 401)"
    )

    @model_validator(mode="after")
    def _unique(self) -> AdminApiConfig:
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError("admin.api.keys: two keys have the same name")
        digests = [k.sha256 for k in self.keys]
        if len(set(digests)) != len(digests):
            raise ValueError("admin.api.keys: the same key is listed twice")
        return self

    def key_table(self) -> KeyTable:
        """The keys, ready for constant-time lookup."""
        return KeyTable(ApiKey(k.name, Role(k.role), k.sha256) for k in self.keys)
