"""Fixtures for MFA service tests: a service on a real SQLite file with injectable doubles."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.auth.totp import TotpParams, hotp, time_step
from proxy.mfa.config import MfaConfig
from proxy.mfa.service import MfaService
from proxy.mfa.sqlite_store import SqliteMfaStore
from proxy.mfa.totp_flow import TotpSetup
from tests.proxy.mfa.fakes import AesGcmKeys, Clock, MemoryGuard

ORIGIN = "https://app.example.com"
CONFIG = MfaConfig.model_validate(
    {
        "issuer": "Example",
        "webauthn": {"rp_id": "example.com", "rp_name": "Example", "origins": [ORIGIN]},
    }
)


@dataclass
class Harness:
    service: MfaService
    clock: Clock
    guard: MemoryGuard
    keys: AesGcmKeys
    store: SqliteMfaStore
    dir: Path


def secret_of(setup: TotpSetup) -> bytes:
    return base64.b32decode(setup.secret + "=" * (-len(setup.secret) % 8))


def step_now(clock: Clock, period: int = 30) -> int:
    return time_step(datetime.fromtimestamp(clock(), UTC), period=period)


def code(setup: TotpSetup, clock: Clock, offset: int = 0, params: TotpParams | None = None) -> str:
    p = params or TotpParams()
    return hotp(secret_of(setup), step_now(clock, p.period) + offset, params=p)


async def build(tmp_path: Path, config: MfaConfig = CONFIG) -> AsyncIterator[Harness]:
    clock = Clock()
    guard = MemoryGuard(clock)
    keys = AesGcmKeys()
    store = SqliteMfaStore(tmp_path / "mfa.sqlite3")
    await store.open()
    try:
        yield Harness(
            MfaService(config, store=store, keys=keys, guard=guard, now=clock),
            clock,
            guard,
            keys,
            store,
            tmp_path,
        )
    finally:
        await store.close()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async for harness in build(tmp_path):
        yield harness


async def enrol_totp(h: Harness, subject: str = "alice") -> TotpSetup:
    """Begin and confirm a TOTP enrolment, then move the clock past the confirming step."""
    setup = await h.service.begin_totp(subject, account=f"{subject}@example.com")
    result = await h.service.confirm_totp(subject, code(setup, h.clock))
    assert result.outcome == "enrolled", result
    h.clock.advance(90)  # three steps on: the confirming code is out of the window
    return setup
