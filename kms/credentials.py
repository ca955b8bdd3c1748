"""The credentials file: who may call the KMS, with which roles, by the SHA-256 of their secret.

```yaml
credentials:
  - id: gateway-eu1        # written to the audit log
    roles: [gateway]       # admin: TEE registry; gateway: grants, revoke, root operations
    sha256: 3f9c...        # hex SHA-256 of the secret (tokengate kms credential create)
```

The secret itself is never in the file. Ids and digests are unique; an empty
list is allowed (every call is then 401) but :mod:`kms.production` refuses it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kms.auth import ROLES, Credential, CredentialTable
from policy.yamlio import load_model


class CredentialConfig(BaseModel):
    """One caller credential."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="holder, for the audit log")
    roles: list[str] = Field(min_length=1, description="admin and/or gateway")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the secret")

    @model_validator(mode="after")
    def _roles(self) -> CredentialConfig:
        unknown = sorted(set(self.roles) - ROLES)
        if unknown:
            raise ValueError(f"unknown role '{unknown[0][:32]}' (admin, gateway)")
        return self


class CredentialsFile(BaseModel):
    """The whole credentials file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    credentials: list[CredentialConfig] = Field(
        default_factory=list, description="callers allowed to use the KMS"
    )

    @model_validator(mode="after")
    def _unique(self) -> CredentialsFile:
        ids = [c.id for c in self.credentials]
        if len(set(ids)) != len(ids):
            raise ValueError("two credentials have the same id")
        digests = [c.sha256 for c in self.credentials]
        if len(set(digests)) != len(digests):
            raise ValueError("the same secret is listed twice")
        return self

    def table(self) -> CredentialTable:
        """The credentials, ready for constant-time lookup."""
        return CredentialTable(
            Credential(c.id, frozenset(c.roles), c.sha256) for c in self.credentials
        )


def load_credentials(path: Path) -> CredentialsFile:
    """Read and validate the credentials file; PolicyError naming every problem."""
    return load_model(CredentialsFile, path, label=path.name, env={})
