"""The ``audit:`` section of gateway.yaml.

Relative paths are under the gateway's data dir. The checkpoint directory is
the second, independent sink for signed checkpoints, so it must not be the
log directory (put it on another volume where you can). With ``postgres`` set,
entries and checkpoints are also written to PostgreSQL, and an act is refused
unless both the files and the database have its entry.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

MIB = 1 << 20


class PostgresAuditConfig(BaseModel):
    """PostgreSQL sink for entries and checkpoints (psycopg 3, one transaction per batch)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dsn: SecretStr = Field(
        description="libpq connection string or postgresql:// URL (TLS options go here)"
    )
    db_schema: str = Field(
        "tokengate_audit",
        alias="schema",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="schema holding audit_entries and audit_checkpoints (created if absent)",
    )
    connect_timeout: float = Field(5.0, gt=0, le=120, description="seconds to open the connection")
    timeout: float = Field(
        5.0, gt=0, le=120, description="seconds per statement or batch transaction"
    )


class AuditConfig(BaseModel):
    """The audit log: where entries and checkpoints go, and how often checkpoints are signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: Path = Field(
        Path("audit"), description="directory of the log files (one chain per writer process)"
    )
    rotate_bytes: int = Field(
        64 * MIB, ge=4096, description="start a new file once the current one reaches this size"
    )
    checkpoint_every: int = Field(
        1000, ge=1, le=1_000_000, description="sign a checkpoint after this many entries"
    )
    checkpoint_dir: Path = Field(
        Path("audit-checkpoints"),
        description="second sink for signed checkpoints; must differ from dir",
    )
    checkpoint_key: Path = Field(
        Path("keys/audit-checkpoint.pem"),
        description="Ed25519 checkpoint key (PEM) until the keyring provides one",
    )
    max_batch: int = Field(
        1024, ge=1, le=100_000, description="most entries written and synced together"
    )
    write_timeout: float = Field(
        10.0, gt=0, le=300, description="seconds a batch may take to persist before the log fails"
    )
    postgres: PostgresAuditConfig | None = Field(
        None, description="also write entries and checkpoints to PostgreSQL"
    )

    @model_validator(mode="after")
    def _separate_sinks(self) -> AuditConfig:
        if self.dir == self.checkpoint_dir:
            raise ValueError("checkpoint_dir must differ from dir (it is the second sink)")
        return self

    def log_dir(self, data_dir: Path) -> Path:
        """The log directory, resolved against ``data_dir``."""
        return data_dir / self.dir

    def checkpoint_path(self, data_dir: Path) -> Path:
        """The checkpoint directory, resolved against ``data_dir``."""
        return data_dir / self.checkpoint_dir

    def key_path(self, data_dir: Path) -> Path:
        """The checkpoint key file, resolved against ``data_dir``."""
        return data_dir / self.checkpoint_key
