"""Helpers for CLI tests that touch the vault: a gateway.yaml per store, a real Vault beside the CLI.

``gateway_yaml`` writes a gateway.yaml whose ``vault:`` names a SQLite file
(the embedded default), the shared Redis (under the test's prefix, volatile
accepted: the shared server is not configured for durability) or the shared
PostgreSQL (in the test's schema). ``opened_vault`` opens the same keyring
file and store the CLI opens, so a test can tokenize and detokenize around
CLI runs; it is reopened each time to see keys the CLI rotated.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from kms_client.manager import KeyManager
from tests.kms_client.support import open_manager
from vault.config import VaultConfig
from vault.engine import Vault
from vault.opening import open_store
from vault.store import VaultStore

KEYRING = "cli-test"
UPSTREAM = "upstreams:\n  app: {url: 'http://127.0.0.1:1'}\n"
STORES = ("sqlite", "redis", "postgresql")


def vault_section(kind: str, request: pytest.FixtureRequest) -> dict[str, object]:
    """The ``vault:`` settings for a store of ``kind`` on the shared servers."""
    if kind == "sqlite":
        return {"url": "sqlite:vault/vault.db"}
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_cleanup")
        return {"url": url, "prefix": prefix, "accept_volatile": True}
    url, schema = request.getfixturevalue("pg_schema")
    return {"url": f"{url}?schema={schema}"}


def gateway_yaml(tmp_path: Path, vault: dict[str, object], extra: str = "") -> Path:
    """A gateway.yaml under ``tmp_path`` (data dir ``data``) with this ``vault:`` section."""
    lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in vault.items())
    path = tmp_path / "gateway.yaml"
    path.write_text(
        UPSTREAM + f"data_dir: data\nkeys:\n  keyring_name: {KEYRING}\nvault:\n{lines}{extra}"
    )
    return path


@asynccontextmanager
async def opened_manager(data_dir: Path) -> AsyncIterator[KeyManager]:
    """The CLI's keyring (dev root, file store under ``data_dir``), freshly read."""
    manager = await open_manager(data_dir, keyring_name=KEYRING)
    try:
        yield manager
    finally:
        await manager.close()


@asynccontextmanager
async def opened_vault(
    data_dir: Path, vault: dict[str, object]
) -> AsyncIterator[tuple[Vault, VaultStore]]:
    """A Vault over the CLI's keyring and store."""
    async with opened_manager(data_dir) as manager:
        store = await open_store(VaultConfig.model_validate(vault), data_dir=data_dir)
        try:
            yield Vault(store, manager), store
        finally:
            await store.close()


async def key_versions(store: VaultStore) -> list[int]:
    """The tokenize key version of every record, in id order."""
    out: list[int] = []
    after: bytes | None = None
    while page := await store.scan(after=after, limit=200):
        out += [r.key_version for r in page]
        after = page[-1].id
    return out
