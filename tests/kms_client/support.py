"""Shared helpers for the kms_client tests: a schema-checking auditor, a clock, configs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit.events import schema_for
from kms_client.audit_port import AuditValue
from kms_client.config import KeysConfig
from kms_client.manager import KeyManager
from kms_client.opening import open_key_manager


class RecordingAuditor:
    """Keeps every event, after checking it against the real declared schema."""

    def __init__(self, *, fail: bool = False) -> None:
        self.events: list[tuple[str, dict[str, AuditValue]]] = []
        self.fail = fail

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        schema_for(event).validate(fields)
        if self.fail:
            raise OSError("audit sink down")
        self.events.append((event, dict(fields)))

    def names(self, result: str | None = None) -> list[str]:
        """Event names, optionally only those with ``result``."""
        return [e for e, f in self.events if result is None or f.get("result") == result]

    def find(self, event: str, **match: AuditValue) -> list[dict[str, AuditValue]]:
        """Fields of every ``event`` whose fields include ``match``."""
        return [
            f for e, f in self.events if e == event and all(f.get(k) == v for k, v in match.items())
        ]

    def dump(self) -> str:
        """All events as JSON lines (to grep for key material)."""
        return "\n".join(json.dumps([e, f], sort_keys=True) for e, f in self.events)


class Clock:
    """An injectable clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def keys_config(**overrides: object) -> KeysConfig:
    """A KeysConfig with test-friendly defaults."""
    return KeysConfig.model_validate(overrides)


async def open_manager(
    tmp_path: Path,
    auditor: RecordingAuditor | None = None,
    *,
    clock: Clock | None = None,
    **config: object,
) -> KeyManager:
    """An unsealed manager on the dev root and file store under ``tmp_path`` (no background)."""
    return await open_key_manager(
        keys_config(**config),
        data_dir=tmp_path,
        auditor=auditor or RecordingAuditor(),
        production=False,
        now=clock,
        background=False,
    )
