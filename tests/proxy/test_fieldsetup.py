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
    limiter, closable = open_limiter(
        TokenizationConfig(rate_limits=uri), data_dir=tmp_path, workers=1
    )
    assert isinstance(limiter, kind)
    if isinstance(closable, RedisRateLimiter):
        await closable.close()


def test_memory_limiter_refused_with_several_workers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="memory: counts per worker"):
        open_limiter(TokenizationConfig(rate_limits="memory:"), data_dir=tmp_path, workers=2)


def test_unknown_limiter_scheme_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="rate_limits must be"):
        TokenizationConfig(rate_limits="mongodb://x")
