"""What a worker opens for field rules: the vault store, its readiness, the rate limiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.ratelimit import MemoryRateLimiter, RedisRateLimiter
from plugins.sqlite_ratelimit import SqliteRateLimiter
from proxy.fieldsetup import VaultReady, open_limiter
from proxy.tokenization import TokenizationConfig
from tests.conftest import free_port
from tests.proxy.sessions.servers import start
from tokengate.errors import ConfigError
from vault.config import VaultConfig
from vault.opening import open_store


async def test_vault_ready_follows_the_store(tmp_path: Path) -> None:
    server = start(tmp_path / "redis", free_port())
    try:
        config = VaultConfig(
            url=f"redis://127.0.0.1:{server.port}/0", accept_volatile=True, timeout=0.5
        )
        store = await open_store(config, data_dir=tmp_path)
        ready = VaultReady(store, timeout=1.0)
        assert await ready.check()
        server.stop()
        assert not await ready.check()
        await store.close()
    finally:
        server.stop()


async def test_sqlite_vault_is_ready(tmp_path: Path) -> None:
    store = await open_store(VaultConfig(), data_dir=tmp_path)
    try:
        assert await VaultReady(store, timeout=1.0).check()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("sqlite:ratelimits/rl.db", SqliteRateLimiter),
        ("redis://127.0.0.1:6379/0", RedisRateLimiter),
        ("memory:", MemoryRateLimiter),
    ],
)
async def test_limiter_by_uri(tmp_path: Path, uri: str, kind: type) -> None:
    limiter = open_limiter(TokenizationConfig(rate_limits=uri), data_dir=tmp_path, workers=1)
    assert isinstance(limiter, kind)
    if isinstance(limiter, RedisRateLimiter):
        await limiter.close()


def test_memory_limiter_refused_with_several_workers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="memory: counts per worker"):
        open_limiter(TokenizationConfig(rate_limits="memory:"), data_dir=tmp_path, workers=2)


def test_unknown_limiter_scheme_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="rate_limits must be"):
        TokenizationConfig(rate_limits="mongodb://x")


async def test_expired_sqlite_records_are_purged(tmp_path: Path) -> None:
    import asyncio

    from proxy.fieldsetup import _purge_forever
    from vault.sqlite_store import SqliteVault
    from vault.store import StoredRecord

    now = [1000.0]
    store = SqliteVault(tmp_path / "v.db", timeout=2.0, now=lambda: now[0])
    await store.open()
    try:
        live = StoredRecord(b"a" * 32, 1, b"o", b"m", expires=None)
        dying = StoredRecord(b"b" * 32, 1, b"o", b"m", expires=1500)
        assert await store.put_new([live, dying]) == [True, True]
        now[0] = 2000.0
        task = asyncio.create_task(_purge_forever(store, every=0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if _rows(tmp_path / "v.db") == 1:
                break
        task.cancel()
        # The expired row is gone from the file, not only hidden from reads.
        now[0] = 1000.0
        assert [r.id for r in await store.scan(after=None, limit=10)] == [b"a" * 32]
    finally:
        await store.close()


def _rows(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM tg_vault").fetchone()[0])
