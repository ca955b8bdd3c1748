"""Opening what field rules need at worker start: the vault and the rate limiter.

The vault store is opened (and its durability checked) whether or not a
route has field rules yet, because a reload may add some and must not find
the vault missing. A store that cannot be opened stops the worker: a gateway
that starts without its vault would answer field-rule routes 503 forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from kms_client.audit_port import Auditor
from kms_client.manager import KeyManager
from plugins.base import RateLimiter, TeeJobs
from plugins.ratelimit import MemoryRateLimiter, RedisRateLimiter
from plugins.sqlite_ratelimit import SqliteRateLimiter
from proxy.sessions.factory import sqlite_path
from proxy.tokenization import TokenizationConfig
from tokengate.errors import ConfigError, GatewayError
from vault.config import VaultConfig
from vault.engine import Vault
from vault.opening import open_store
from vault.sqlite_store import SqliteVault
from vault.store import VaultStore

log = logging.getLogger("tokengate.vault")
PURGE_EVERY = 600.0  # seconds between purges of expired SQLite records


@dataclass(frozen=True, slots=True)
class VaultReady:
    """Readiness: the vault store answers a one-record scan within ``timeout``."""

    store: VaultStore
    timeout: float
    name: str = "vault"

    async def check(self) -> bool:
        """True when the store answered; any failure or timeout is not ready."""
        try:
            async with asyncio.timeout(self.timeout):
                await self.store.scan(after=None, limit=1)
        except (GatewayError, OSError, TimeoutError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class FieldRuntime:
    """The long-lived dependencies of field actions in one worker."""

    vault: Vault
    store: VaultStore
    limiter: RateLimiter
    keys: KeyManager
    audit: Auditor
    tee: TeeJobs | None = None  # the TEE pool's job runner (proxy.teesetup); None: no pool


type Limiter = MemoryRateLimiter | RedisRateLimiter | SqliteRateLimiter


def open_limiter(config: TokenizationConfig, *, data_dir: Path, workers: int) -> Limiter:
    """The configured detokenize rate limiter."""
    uri = config.rate_limits
    if uri.startswith("memory:"):
        if workers > 1:
            raise ConfigError(
                "tokenization.rate_limits: memory: counts per worker; with several workers "
                "use sqlite:<path> or redis://"
            )
        return MemoryRateLimiter()
    if uri.startswith(("redis://", "rediss://")):
        return RedisRateLimiter.from_url(uri, timeout=config.rate_limit_timeout)
    path = sqlite_path(uri, data_dir, setting="tokenization.rate_limits")
    return SqliteRateLimiter(path, timeout=config.rate_limit_timeout)


@asynccontextmanager
async def open_fields(
    *,
    vault_config: VaultConfig,
    tokenization: TokenizationConfig,
    data_dir: Path,
    keys: KeyManager,
    audit: Auditor,
    workers: int,
    tee: TeeJobs | None = None,
) -> AsyncIterator[FieldRuntime]:
    """Open the vault store and the limiter for one worker; close both on exit."""
    async with AsyncExitStack() as stack:
        store = await open_store(vault_config, data_dir=data_dir)
        stack.push_async_callback(store.close)
        limiter = open_limiter(tokenization, data_dir=data_dir, workers=workers)
        if not isinstance(limiter, MemoryRateLimiter):
            stack.push_async_callback(limiter.close)
        vault = Vault(store, keys, untagged_index_version=tokenization.untagged_index_version)
        if isinstance(store, SqliteVault):
            # Expired records are never returned; this only gives their space back.
            purger = asyncio.create_task(_purge_forever(store), name="vault-purge-expired")
            stack.callback(purger.cancel)
        yield FieldRuntime(
            vault=vault, store=store, limiter=limiter, keys=keys, audit=audit, tee=tee
        )


async def _purge_forever(store: SqliteVault, *, every: float = PURGE_EVERY) -> None:
    """Delete expired SQLite records in bounded batches, forever (cancelled at shutdown)."""
    while True:
        await asyncio.sleep(every)
        try:
            await store.purge_expired(limit=10_000)
        except GatewayError as e:
            log.warning("vault: purging expired records failed: %s", type(e).__name__)
