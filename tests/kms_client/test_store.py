"""The keyring store contract, run against the real file, Redis and PostgreSQL backends."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms_client.errors import KeyringConflict, KeyringError
from kms_client.store import KeyringStore, open_store, redact, split_params
from tests.kms_client.stores import BACKENDS, redis_cleanup, store_uri
from tokengate.errors import ConfigError


@pytest.fixture(params=BACKENDS)
async def store(request, tmp_path, redis_url, unique_prefix) -> AsyncIterator[KeyringStore]:
    backend = request.param
    pg = request.getfixturevalue("pg_schema") if backend == "postgres" else ("", "")
    uri = store_uri(backend, tmp_path=tmp_path, redis_url=redis_url, prefix=unique_prefix, pg=pg)
    s = open_store(uri, name="test")
    async with redis_cleanup(redis_url, unique_prefix):
        await s.open()
        try:
            yield s
        finally:
            await s.close()


async def test_empty_store(store: KeyringStore) -> None:
    assert await store.load() is None
    assert await store.version() is None


async def test_compare_and_set(store: KeyringStore) -> None:
    await store.save(b"v1", version=1, expected=None)
    with pytest.raises(KeyringConflict):
        await store.save(b"other v1", version=1, expected=None)
    await store.save(b"v2", version=2, expected=1)
    with pytest.raises(KeyringConflict):
        await store.save(b"stale", version=2, expected=1)
    loaded = await store.load()
    assert loaded is not None
    assert (loaded.version, loaded.blob) == (2, b"v2")
    assert await store.version() == 2


async def test_concurrent_writers_one_wins(store: KeyringStore) -> None:
    await store.save(b"base", version=1, expected=None)
    results = await asyncio.gather(
        *(store.save(f"w{i}".encode(), version=2, expected=1) for i in range(8)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, KeyringConflict) for r in results if r is not None)


async def test_usage_counters_add_up(store: KeyringStore) -> None:
    assert await store.add_usage("mfa-secrets", 1, 0) == 0
    assert await store.add_usage("mfa-secrets", 1, 5) == 5
    assert await store.add_usage("mfa-secrets", 1, 7) == 12
    assert await store.add_usage("mfa-secrets", 2, 1) == 1


async def test_secrets_crud_and_compare_and_replace(store: KeyringStore) -> None:
    assert await store.secret_get("p", "a") is None
    await store.secret_put("p", "a", b"\x00one")
    assert await store.secret_get("p", "a") == b"\x00one"
    assert await store.secret_replace("p", "a", b"\x00one", b"two")
    assert not await store.secret_replace("p", "a", b"\x00one", b"three")
    assert await store.secret_get("p", "a") == b"two"
    assert await store.secret_get("other", "a") is None
    assert await store.secret_delete("p", "a")
    assert not await store.secret_delete("p", "a")


async def test_scan_visits_every_secret(store: KeyringStore) -> None:
    names = {f"user-{i:03d}" for i in range(57)}
    for n in names:
        await store.secret_put("p", n, n.encode())
    await store.secret_put("q", "elsewhere", b"x")
    seen: dict[str, bytes] = {}
    cursor = None
    while True:
        items, cursor = await store.secret_scan("p", cursor, 10)
        seen.update(items)
        if cursor is None:
            break
    assert set(seen) == names
    assert all(seen[n] == n.encode() for n in names)


async def test_file_store_files_are_private(tmp_path: Path) -> None:
    s = open_store(f"file:{tmp_path / 'kms' / 'keyring.json'}", name="test")
    await s.open()
    await s.save(b"blob", version=1, expected=None)
    await s.add_usage("p", 1, 1)
    await s.secret_put("p", "n", b"v")
    for f in (tmp_path / "kms").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE((tmp_path / "kms").stat().st_mode) == 0o700


async def test_corrupt_file_store_is_named(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text("{broken")
    s = open_store(f"file:{path}", name="test")
    with pytest.raises(KeyringError, match="is corrupt"):
        await s.load()


async def test_unreachable_redis_is_a_clear_error(unused_port: int) -> None:
    s = open_store(f"redis://:secretpw@127.0.0.1:{unused_port}/0", name="test")
    with pytest.raises(KeyringError, match="unreachable") as info:
        await s.open()
    assert "secretpw" not in str(info.value)
    await s.close()


async def test_unreachable_postgres_is_a_clear_error(unused_port: int) -> None:
    s = open_store(f"postgresql://u:secretpw@127.0.0.1:{unused_port}/x", name="test")
    with pytest.raises(KeyringError, match="failed: open") as info:
        await s.open()
    assert "secretpw" not in str(info.value)
    await s.close()


def test_unknown_store_scheme() -> None:
    with pytest.raises(ConfigError, match="unknown scheme 's3'"):
        open_store("s3://bucket/keyring", name="x")


def test_helpers() -> None:
    assert redact("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://host/0") == "redis://host/0"
    assert split_params("postgresql://h/db?schema=s&sslmode=require", {"schema"}) == (
        "postgresql://h/db?sslmode=require",
        {"schema": "s"},
    )
