"""Every real backend (SQLite, Redis, PostgreSQL, S3 on moto_server) keeps the VaultStore contract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.vault.conftest import Clock
from tests.vault.store_contract import CHECKS
from vault.store import VaultStore

Check = Callable[[VaultStore, Clock], Awaitable[None]]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
async def test_contract(any_store: VaultStore, clock: Clock, check: Check) -> None:
    await check(any_store, clock)
