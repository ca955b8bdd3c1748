"""Fixtures of the plugin tests: the real vault engine on the memory store and a real keyring."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kms_client.config import KeysConfig
from kms_client.manager import KeyManager
from kms_client.opening import open_key_manager
from tests.plugins.support import NOW, Env, RecordingAuditor
from vault.engine import Vault
from vault.memory_store import MemoryVaultStore


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[KeyManager]:
    """An unsealed keyring on the development root under ``tmp_path``."""
    manager = await open_key_manager(
        KeysConfig(),
        data_dir=tmp_path,
        auditor=RecordingAuditor(),
        production=False,
        background=False,
    )
    yield manager
    await manager.close()


@pytest.fixture
def env(keys: KeyManager) -> Env:
    """The real vault (memory store, fixed clock) and keyring, a recording auditor."""
    vault = Vault(MemoryVaultStore(now=lambda: NOW), keys, now=lambda: NOW)
    return Env(vault=vault, keys=keys)
