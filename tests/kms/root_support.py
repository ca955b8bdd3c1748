"""Helpers for the remote-root tests: the KMS's own keyring, KWK tables, a running root API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from kms.root_service import ROOT_PURPOSE
from kms.root_table import DEFAULT_SCHEMA, RootKwkTable, open_root_table
from kms_client.manager import KeyManager
from tests.kms_client.support import RecordingAuditor, open_manager


async def kms_keys(data_dir: Path, auditor: RecordingAuditor | None = None) -> KeyManager:
    """The KMS's own unsealed keyring (dev root under ``data_dir``) with the remote-root purpose."""
    return await open_manager(
        data_dir, auditor or RecordingAuditor(), purposes={ROOT_PURPOSE: {"kind": "aead"}}
    )


@asynccontextmanager
async def opened_table(
    uri: str, data_dir: Path, schema: str = DEFAULT_SCHEMA
) -> AsyncIterator[RootKwkTable]:
    """An opened KWK table for ``uri`` (and ``schema`` on PostgreSQL), closed afterwards."""
    table = open_root_table(uri, data_dir=data_dir, schema=schema)
    await table.open()
    try:
        yield table
    finally:
        await table.close()
