"""kms.broker_store: nonces, sessions and grants on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms.broker_store import BrokerStore, Grant, Session, open_broker_store
from tee.errors import RegistryError

NOW = 1_800_000_000
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema: tuple[str, str]
) -> AsyncIterator[BrokerStore]:
    if request.param == "sqlite":
        s = open_broker_store("sqlite:kms/kms.db", data_dir=tmp_path)
    else:
        dsn, schema = pg_schema
        s = open_broker_store(dsn, data_dir=tmp_path, schema=schema)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def grant(gid: str = "tgr_a", *, key: bytes = KEY_A, expires_at: int = NOW + 60) -> Grant:
    return Grant(gid, "w1", key, "luhn", "acme", "req-1", expires_at, b"sealed-" + gid.encode())


def test_unknown_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryError):
        open_broker_store("mysql://x", data_dir=tmp_path)


async def test_nonce_is_single_use_and_scoped_to_its_tee(store: BrokerStore) -> None:
    n = b"n" * 32
    assert await store.add_nonce("w1", n, expires_at=NOW + 60, now=NOW, limit=8)
    assert not await store.take_nonce("w2", n, now=NOW)  # another TEE's nonce
    assert await store.take_nonce("w1", n, now=NOW)
    assert not await store.take_nonce("w1", n, now=NOW)  # replay


async def test_expired_nonce_is_refused(store: BrokerStore) -> None:
    n = b"e" * 32
    assert await store.add_nonce("w1", n, expires_at=NOW + 60, now=NOW, limit=8)
    assert not await store.take_nonce("w1", n, now=NOW + 60)


async def test_pending_nonces_are_capped_per_tee(store: BrokerStore) -> None:
    for i in range(3):
        assert await store.add_nonce("w1", bytes([i]) * 32, expires_at=NOW + 60, now=NOW, limit=3)
    assert not await store.add_nonce("w1", b"x" * 32, expires_at=NOW + 60, now=NOW, limit=3)
    assert await store.add_nonce("w2", b"y" * 32, expires_at=NOW + 60, now=NOW, limit=3)
    # expired ones no longer count
    assert await store.add_nonce("w1", b"z" * 32, expires_at=NOW + 200, now=NOW + 61, limit=3)


async def test_concurrent_takes_of_one_nonce_succeed_once(store: BrokerStore) -> None:
    n = b"c" * 32
    await store.add_nonce("w1", n, expires_at=NOW + 60, now=NOW, limit=8)
    results = await asyncio.gather(*(store.take_nonce("w1", n, now=NOW) for _ in range(8)))
    assert results.count(True) == 1


async def test_sessions_live_until_expiry_or_revocation(store: BrokerStore) -> None:
    await store.add_session(Session(b"d" * 32, "w1", KEY_A, NOW + 600))
    got = await store.session(b"d" * 32, now=NOW)
    assert got == Session(b"d" * 32, "w1", KEY_A, NOW + 600)
    assert await store.session(b"x" * 32, now=NOW) is None
    assert await store.session(b"d" * 32, now=NOW + 600) is None
    assert await store.has_session("w1", KEY_A, now=NOW)
    assert not await store.has_session("w1", KEY_B, now=NOW)
    assert not await store.has_session("w2", KEY_A, now=NOW)
    assert await store.revoke("w1", KEY_B, now=NOW) == (0, 0)
    assert await store.revoke("w1", KEY_A, now=NOW) == (1, 0)
    assert await store.session(b"d" * 32, now=NOW) is None
    assert not await store.has_session("w1", KEY_A, now=NOW)


async def test_grant_released_once_and_key_wiped(store: BrokerStore) -> None:
    await store.add_grant(grant())
    got = await store.grant("tgr_a")
    assert got == grant()
    assert await store.claim("tgr_a", now=NOW) == b"sealed-tgr_a"
    assert await store.claim("tgr_a", now=NOW) is None
    after = await store.grant("tgr_a")
    assert after is not None
    assert after.released
    assert after.sealed_key == b""


async def test_concurrent_claims_release_once(store: BrokerStore) -> None:
    await store.add_grant(grant())
    results = await asyncio.gather(*(store.claim("tgr_a", now=NOW) for _ in range(8)))
    assert [r for r in results if r is not None] == [b"sealed-tgr_a"]


async def test_expired_or_revoked_or_unknown_grant_is_not_claimed(store: BrokerStore) -> None:
    await store.add_grant(grant("tgr_x", expires_at=NOW))
    assert await store.claim("tgr_x", now=NOW) is None
    assert await store.claim("tgr_none", now=NOW) is None
    await store.add_grant(grant("tgr_r"))
    await store.add_grant(grant("tgr_other", key=KEY_B))
    await store.add_session(Session(b"s" * 32, "w1", KEY_A, NOW + 600))
    assert await store.revoke("w1", KEY_A, now=NOW) == (1, 1)
    assert await store.claim("tgr_r", now=NOW) is None
    revoked = await store.grant("tgr_r")
    assert revoked is not None
    assert revoked.revoked
    assert revoked.sealed_key == b""
    assert await store.claim("tgr_other", now=NOW) == b"sealed-tgr_other"  # another key


async def test_revoke_whole_tee_spares_released_grants(store: BrokerStore) -> None:
    await store.add_grant(grant("tgr_1"))
    await store.add_grant(grant("tgr_2", key=KEY_B))
    await store.claim("tgr_1", now=NOW)
    await store.add_session(Session(b"1" * 32, "w1", KEY_A, NOW + 600))
    await store.add_session(Session(b"2" * 32, "w1", KEY_B, NOW + 600))
    assert await store.revoke("w1", None, now=NOW) == (2, 1)
    assert await store.revoke("w1", None, now=NOW) == (0, 0)


async def test_purge_wipes_expired_keys_and_drops_old_rows(store: BrokerStore) -> None:
    await store.add_grant(grant("tgr_old", expires_at=NOW + 10))
    await store.add_nonce("w1", b"p" * 32, expires_at=NOW + 10, now=NOW, limit=8)
    await store.purge(now=NOW + 20, keep=100)
    old = await store.grant("tgr_old")
    assert old is not None
    assert old.sealed_key == b""  # expired: key gone, row kept for a precise answer
    assert not await store.take_nonce("w1", b"p" * 32, now=NOW)
    await store.purge(now=NOW + 200, keep=100)
    assert await store.grant("tgr_old") is None
