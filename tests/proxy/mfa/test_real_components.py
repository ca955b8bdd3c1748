"""MfaService on real parts: the kms_client KeyManager and the real session stores.

mypy checks here that the real KeyManager and session stores fit the MFA
Protocols (they are passed where ``MfaKeys`` / ``AttemptGuard`` are expected).
The same TOTP and recovery flows as the unit tests, with the keyring doing the
encryption (purpose ``mfa-secrets``) and key derivation, and the session
store (a SQLite file, or the shared Redis) doing replay guards and lockout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis

from audit.events import schema_for
from kms_client.config import KeysConfig
from kms_client.errors import DecryptionError
from kms_client.manager import KeyManager
from kms_client.opening import open_key_manager
from proxy.mfa.config import MfaConfig
from proxy.mfa.outcome import MfaOutcome
from proxy.mfa.service import MfaService, open_mfa_service
from proxy.sessions.redis_store import RedisSessionStore
from proxy.sessions.redis_uri import parse_redis_uri
from proxy.sessions.sqlite_store import SqliteSessionStore
from proxy.sessions.store import StoreSettings
from tests.proxy.mfa.conftest import code, secret_of
from tests.proxy.mfa.fakes import Clock


class SchemaAuditor:
    """Accepts the key manager's audit events after checking their declared schema."""

    async def emit(self, event: str, /, **fields: object) -> None:
        schema_for(event).validate(fields)


@dataclass
class Real:
    service: MfaService
    clock: Clock
    keys: KeyManager
    dir: Path


@pytest.fixture(params=["sqlite", "redis"])
async def real(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, unique_prefix: str
) -> AsyncIterator[Real]:
    clock = Clock()
    keys = await open_key_manager(
        KeysConfig(),
        data_dir=tmp_path / "keys",
        auditor=SchemaAuditor(),
        production=False,
        background=False,
    )
    guard: SqliteSessionStore | RedisSessionStore
    if request.param == "sqlite":
        guard = SqliteSessionStore(tmp_path / "sessions.sqlite3")
        config = MfaConfig()
    else:
        guard = RedisSessionStore(
            parse_redis_uri(redis_url), StoreSettings(key_prefix=f"{unique_prefix}:s:")
        )
        config = MfaConfig(store=redis_url)
    await guard.open()
    service = await open_mfa_service(
        config,
        data_dir=tmp_path,
        keys=keys,
        guard=guard,
        production=False,
        prefix=f"{unique_prefix}:m:",
        now=clock,
    )
    try:
        yield Real(service, clock, keys, tmp_path)
    finally:
        await service.store.close()
        await guard.close()
        await keys.close()
        if request.param == "redis":
            client = redis.Redis.from_url(redis_url)
            found = [k async for k in client.scan_iter(match=f"{unique_prefix}:*")]
            if found:
                await client.delete(*found)
            await client.aclose()


async def test_totp_enrol_pass_replay_and_lockout(real: Real) -> None:
    svc, clock = real.service, real.clock
    setup = await svc.begin_totp("alice", account="alice@example.com")
    assert (await svc.confirm_totp("alice", code(setup, clock))).outcome == MfaOutcome.ENROLLED
    clock.advance(90)
    right = code(setup, clock)
    assert (await svc.verify_totp("alice", right)).outcome == MfaOutcome.PASSED
    assert (await svc.verify_totp("alice", right)).outcome == MfaOutcome.REPLAYED
    clock.advance(30)
    wrong = str((int(code(setup, clock)) + 1) % 1_000_000).zfill(6)
    results = [await svc.verify_totp("alice", wrong) for _ in range(5)]
    assert [r.outcome for r in results] == [MfaOutcome.FAILED] * 4 + [MfaOutcome.LOCKED]
    assert results[-1].locked_until == pytest.approx(clock() + 900)
    assert (await svc.verify_totp("alice", code(setup, clock))).outcome == MfaOutcome.LOCKED
    clock.advance(900)
    assert (await svc.verify_totp("alice", code(setup, clock))).outcome == MfaOutcome.PASSED


async def test_recovery_codes_with_keyring_derived_key(real: Real) -> None:
    codes = await real.service.issue_recovery_codes("alice")
    assert (await real.service.verify_recovery_code("alice", codes[0])).outcome == MfaOutcome.PASSED
    assert (await real.service.verify_recovery_code("alice", codes[0])).outcome == MfaOutcome.FAILED
    await real.keys.rotate("mfa-secrets", actor="test")
    assert (await real.service.verify_recovery_code("alice", codes[1])).outcome == MfaOutcome.PASSED


async def test_secret_is_a_keyring_ciphertext_bound_to_the_subject(real: Real) -> None:
    setup = await real.service.begin_totp("alice", account="alice")
    row = await real.service.store.get_totp("alice", pending=True)
    assert row is not None
    assert real.keys.decrypt(
        "mfa-secrets", row.ciphertext, context=b"tokengate/mfa/totp-secret/v1\x00\x00\x00\x05alice"
    ) == secret_of(setup)
    await real.service.store.put_pending_totp(
        type(row)("mallory", row.ciphertext, row.params, row.created_at)
    )
    with pytest.raises(DecryptionError):
        await real.service.confirm_totp("mallory", code(setup, real.clock))


async def test_sqlite_files_never_hold_the_secret(tmp_path: Path) -> None:
    clock = Clock()
    keys = await open_key_manager(
        KeysConfig(),
        data_dir=tmp_path / "keys",
        auditor=SchemaAuditor(),
        production=False,
        background=False,
    )
    guard = SqliteSessionStore(tmp_path / "sessions.sqlite3")
    await guard.open()
    service = await open_mfa_service(
        MfaConfig(), data_dir=tmp_path, keys=keys, guard=guard, production=False, now=clock
    )
    setup = await service.begin_totp("alice", account="alice")
    await service.confirm_totp("alice", code(setup, clock))
    codes = await service.issue_recovery_codes("alice")
    await service.store.close()
    await guard.close()
    await keys.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert tmp_path / "mfa.sqlite3" in files
    blob = b"".join(p.read_bytes() for p in files)
    for needle in (
        setup.secret,
        setup.secret.lower(),
        secret_of(setup).hex(),
        *codes,
        *(c.replace("-", "") for c in codes),
    ):
        assert needle.encode() not in blob
    assert secret_of(setup) not in blob
