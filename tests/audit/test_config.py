"""AuditConfig: defaults, documentation of every field, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from audit import AuditConfig, PostgresAuditConfig

DSN = "postgresql://audit:s3cret-pw@db.example:5432/audit?sslmode=verify-full"


def test_defaults() -> None:
    cfg = AuditConfig()
    assert cfg.dir == Path("audit")
    assert cfg.checkpoint_dir == Path("audit-checkpoints")
    assert cfg.checkpoint_key == Path("keys/audit-checkpoint.pem")
    assert cfg.rotate_bytes == 64 * 1024 * 1024
    assert cfg.checkpoint_every == 1000
    assert cfg.postgres is None
    data = Path("/srv/tg")
    assert cfg.log_dir(data) == data / "audit"
    assert cfg.checkpoint_path(data) == data / "audit-checkpoints"
    assert cfg.key_path(data) == data / "keys/audit-checkpoint.pem"
    assert AuditConfig(dir=Path("/var/log/tg")).log_dir(data) == Path("/var/log/tg")


@pytest.mark.parametrize("model", [AuditConfig, PostgresAuditConfig])
def test_every_field_has_a_one_line_description(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, name
        assert "\n" not in field.description


def test_every_audit_field_has_a_default() -> None:
    assert all(not f.is_required() for f in AuditConfig.model_fields.values())


def test_postgres_section_uses_schema_as_its_yaml_key_and_hides_the_dsn() -> None:
    cfg = AuditConfig.model_validate({"postgres": {"dsn": DSN, "schema": "audit_x"}})
    assert cfg.postgres is not None
    assert cfg.postgres.db_schema == "audit_x"
    assert cfg.postgres.dsn.get_secret_value() == DSN
    assert "s3cret" not in repr(cfg)
    assert "s3cret" not in str(cfg)


@pytest.mark.parametrize(
    "values",
    [
        {"unknown": 1},
        {"dir": "same", "checkpoint_dir": "same"},
        {"rotate_bytes": 10},
        {"checkpoint_every": 0},
        {"max_batch": 0},
        {"write_timeout": 0},
        {"postgres": {"schema": "x"}},
        {"postgres": {"dsn": DSN, "schema": 'bad"name'}},
        {"postgres": {"dsn": DSN, "timeout": 0}},
        {"postgres": {"dsn": DSN, "extra": True}},
    ],
)
def test_invalid_sections_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AuditConfig.model_validate(values)
