"""The MfaRecordStore contract, run on SQLite (a real file) and on the shared real Redis."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as redis

from proxy.auth.totp import TotpAlgorithm, TotpParams
from proxy.mfa.errors import MfaStoreUnavailable
from proxy.mfa.records import Ceremony, TotpEnrolment, WebAuthnCredential
from proxy.mfa.redis_store import RedisMfaStore
from proxy.mfa.sqlite_store import SqliteMfaStore
from proxy.mfa.store import (
    MfaRecordStore,
    check_store_uri,
    default_store_uri,
    open_mfa_store,
    sqlite_path,
)
from tokengate.errors import ConfigError

T = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, unique_prefix: str
) -> AsyncIterator[MfaRecordStore]:
    backend: MfaRecordStore
    if request.param == "sqlite":
        backend = SqliteMfaStore(tmp_path / "mfa.sqlite3")
    else:
        backend = RedisMfaStore(redis_url, prefix=f"{unique_prefix}:")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        if request.param == "redis":
            client = redis.Redis.from_url(redis_url)
            keys = [k async for k in client.scan_iter(match=f"{unique_prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


def enrolment(
    subject: str = "alice", ct: bytes = b"ciphertext-1", at: datetime = T
) -> TotpEnrolment:
    return TotpEnrolment(subject, ct, TotpParams(TotpAlgorithm.SHA256, 8, 60), created_at=at)


def credential(
    subject: str = "alice", cid: bytes = b"c" * 32, at: datetime = T
) -> WebAuthnCredential:
    return WebAuthnCredential(subject, cid, b"cose-key", 0, b"h" * 32, "aaguid-1", created_at=at)


async def test_totp_pending_then_active(store: MfaRecordStore) -> None:
    assert await store.get_totp("alice", pending=True) is None
    await store.put_pending_totp(enrolment())
    pending = await store.get_totp("alice", pending=True)
    assert pending == enrolment()
    assert await store.get_totp("alice", pending=False) is None
    assert await store.activate_totp("alice", step=100, at=T + timedelta(seconds=5))
    assert await store.get_totp("alice", pending=True) is None
    active = await store.get_totp("alice", pending=False)
    assert active is not None
    assert (active.ciphertext, active.params, active.last_step) == (
        b"ciphertext-1",
        TotpParams(TotpAlgorithm.SHA256, 8, 60),
        100,
    )
    assert active.confirmed_at == T + timedelta(seconds=5)
    assert not await store.activate_totp("alice", step=101, at=T)  # nothing pending any more


async def test_reenrolment_keeps_the_old_factor_until_confirmed(store: MfaRecordStore) -> None:
    await store.put_pending_totp(enrolment(ct=b"old"))
    await store.activate_totp("alice", step=1, at=T)
    await store.put_pending_totp(enrolment(ct=b"new"))
    active = await store.get_totp("alice", pending=False)
    assert active is not None
    assert active.ciphertext == b"old"
    await store.activate_totp("alice", step=2, at=T)
    active = await store.get_totp("alice", pending=False)
    assert active is not None
    assert active.ciphertext == b"new"


async def test_totp_step_only_moves_forward(store: MfaRecordStore) -> None:
    assert not await store.advance_totp_step("alice", 5)  # nothing active
    await store.put_pending_totp(enrolment())
    await store.activate_totp("alice", step=10, at=T)
    assert not await store.advance_totp_step("alice", 10)
    assert not await store.advance_totp_step("alice", 9)
    assert await store.advance_totp_step("alice", 11)
    results = await asyncio.gather(*(store.advance_totp_step("alice", 12) for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]


async def test_totp_delete_and_subjects_are_separate(store: MfaRecordStore) -> None:
    await store.put_pending_totp(enrolment("alice"))
    await store.put_pending_totp(enrolment("bob"))
    assert await store.delete_totp("alice")
    assert not await store.delete_totp("alice")
    assert await store.get_totp("bob", pending=True) is not None


async def test_recovery_codes_single_use(store: MfaRecordStore) -> None:
    assert await store.recovery_codes("alice") is None
    digests = [bytes([i]) * 32 for i in range(10)]
    await store.replace_recovery_codes("alice", key_version=3, digests=digests, at=T)
    codes = await store.recovery_codes("alice")
    assert codes is not None
    assert (codes.key_version, sorted(codes.digests), codes.created_at) == (3, digests, T)
    assert await store.consume_recovery_code("alice", digests[4])
    assert not await store.consume_recovery_code("alice", digests[4])
    assert not await store.consume_recovery_code("bob", digests[5])
    codes = await store.recovery_codes("alice")
    assert codes is not None
    assert len(codes.digests) == 9
    results = await asyncio.gather(
        *(store.consume_recovery_code("alice", digests[0]) for _ in range(5))
    )
    assert sorted(results) == [False] * 4 + [True]


async def test_recovery_codes_replaced_and_deleted(store: MfaRecordStore) -> None:
    await store.replace_recovery_codes("alice", key_version=1, digests=[b"a" * 32], at=T)
    await store.replace_recovery_codes("alice", key_version=2, digests=[b"b" * 32], at=T)
    assert not await store.consume_recovery_code("alice", b"a" * 32)
    codes = await store.recovery_codes("alice")
    assert codes is not None
    assert codes.digests == (b"b" * 32,)
    assert codes.key_version == 2
    assert await store.delete_recovery_codes("alice")
    assert await store.recovery_codes("alice") is None
    assert not await store.delete_recovery_codes("alice")


async def test_webauthn_credentials(store: MfaRecordStore) -> None:
    first = credential(cid=b"1" * 32)
    second = credential(cid=b"2" * 32, at=T + timedelta(seconds=1))
    assert await store.add_webauthn_credential(second)
    assert await store.add_webauthn_credential(first)
    assert await store.webauthn_credentials("alice") == [first, second]
    assert not await store.add_webauthn_credential(first)
    assert not await store.add_webauthn_credential(credential("bob", cid=b"1" * 32))
    assert await store.webauthn_credentials("bob") == []


async def test_sign_count_compare_and_set(store: MfaRecordStore) -> None:
    await store.add_webauthn_credential(credential())
    used = T + timedelta(minutes=1)
    assert not await store.update_sign_count("alice", b"c" * 32, expected=3, new=4, at=used)
    assert not await store.update_sign_count("bob", b"c" * 32, expected=0, new=4, at=used)
    results = await asyncio.gather(
        *(store.update_sign_count("alice", b"c" * 32, expected=0, new=1, at=used) for _ in range(5))
    )
    assert sorted(results) == [False] * 4 + [True]
    (stored,) = await store.webauthn_credentials("alice")
    assert (stored.sign_count, stored.last_used_at) == (1, used)


async def test_webauthn_delete_frees_the_id(store: MfaRecordStore) -> None:
    await store.add_webauthn_credential(credential())
    assert not await store.delete_webauthn_credential("bob", b"c" * 32)
    assert await store.delete_webauthn_credential("alice", b"c" * 32)
    assert not await store.delete_webauthn_credential("alice", b"c" * 32)
    assert await store.webauthn_credentials("alice") == []
    assert await store.add_webauthn_credential(credential("bob"))


async def test_challenges_are_single_use_and_expire(store: MfaRecordStore) -> None:
    await store.put_challenge(
        "alice", Ceremony.REGISTER, b"r" * 32, expires_at=T + timedelta(minutes=5)
    )
    await store.put_challenge(
        "alice", Ceremony.AUTHENTICATE, b"a" * 32, expires_at=T + timedelta(minutes=5)
    )
    results = await asyncio.gather(
        *(store.take_challenge("alice", Ceremony.REGISTER, now=T) for _ in range(5))
    )
    assert sorted(results, key=lambda r: r is None) == [b"r" * 32] + [None] * 4
    assert await store.take_challenge("bob", Ceremony.AUTHENTICATE, now=T) is None
    assert (
        await store.take_challenge("alice", Ceremony.AUTHENTICATE, now=T + timedelta(minutes=5))
        is None
    )
    assert (
        await store.take_challenge("alice", Ceremony.AUTHENTICATE, now=T) is None
    )  # taken by the expired try


async def test_a_new_challenge_replaces_the_open_one(store: MfaRecordStore) -> None:
    await store.put_challenge(
        "alice", Ceremony.REGISTER, b"1" * 32, expires_at=T + timedelta(minutes=5)
    )
    await store.put_challenge(
        "alice", Ceremony.REGISTER, b"2" * 32, expires_at=T + timedelta(minutes=5)
    )
    assert await store.take_challenge("alice", Ceremony.REGISTER, now=T) == b"2" * 32


async def test_sqlite_file_is_owner_only_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mfa.sqlite3"
    one, two = SqliteMfaStore(path), SqliteMfaStore(path)
    await one.open()
    await two.open()
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        await one.replace_recovery_codes("alice", key_version=1, digests=[b"x" * 32], at=T)
        results = await asyncio.gather(
            one.consume_recovery_code("alice", b"x" * 32),
            two.consume_recovery_code("alice", b"x" * 32),
        )
        assert sorted(results) == [False, True]
    finally:
        await one.close()
        await two.close()


async def test_closed_or_unreachable_stores_fail_closed(tmp_path: Path, unused_port: int) -> None:
    store = SqliteMfaStore(tmp_path / "mfa.sqlite3")
    with pytest.raises(MfaStoreUnavailable):
        await store.get_totp("alice", pending=False)
    await store.open()
    await store.close()
    with pytest.raises(MfaStoreUnavailable):
        await store.recovery_codes("alice")
    down = RedisMfaStore(f"redis://127.0.0.1:{unused_port}/0")
    with pytest.raises(MfaStoreUnavailable):
        await down.open()
    await down.close()


async def test_sqlite_unwritable_location_fails_closed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = SqliteMfaStore(blocker / "mfa.sqlite3")
    with pytest.raises((MfaStoreUnavailable, OSError)):
        await store.open()
    await store.close()


def test_open_by_uri(tmp_path: Path) -> None:
    assert isinstance(
        open_mfa_store(default_store_uri(tmp_path), data_dir=tmp_path), SqliteMfaStore
    )
    assert isinstance(open_mfa_store("redis://127.0.0.1:6379/0", data_dir=tmp_path), RedisMfaStore)
    assert isinstance(
        open_mfa_store("rediss://cache.example:6380/0", data_dir=tmp_path), RedisMfaStore
    )
    assert sqlite_path("sqlite:mfa.db", data_dir=tmp_path) == tmp_path / "mfa.db"
    assert sqlite_path("sqlite:///var/lib/tg/mfa.db", data_dir=tmp_path) == Path(
        "/var/lib/tg/mfa.db"
    )
    for bad in ("postgresql://db/x", "memory:", "sqlite://host/x", "sqlite:"):
        with pytest.raises(ConfigError, match=r"mfa\.store"):
            open_mfa_store(bad, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("uri", "refused"),
    [
        ("redis://cache.example:6379/0", True),
        ("redis://10.0.0.5:6379/0", True),
        ("rediss://cache.example:6379/0", False),
        ("redis://127.0.0.1:6379/0", False),
        ("redis://localhost:6379/0", False),
        ("sqlite:///var/lib/tg/mfa.db", False),
    ],
)
def test_production_refuses_plaintext_remote_redis(uri: str, refused: bool) -> None:
    check_store_uri(uri, production=False)
    if refused:
        with pytest.raises(ConfigError, match="rediss://"):
            check_store_uri(uri, production=True)
    else:
        check_store_uri(uri, production=True)
