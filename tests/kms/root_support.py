"""Helpers for the remote-root tests: the KMS's own keyring, KWK tables, a running root API."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from kms.auth import (
    CREDENTIALS,
    Credential,
    CredentialTable,
    authenticate,
    credential_digest,
    new_credential,
)
from kms.root_api import add_root_routes
from kms.root_service import ROOT_PURPOSE, RootService
from kms.root_table import DEFAULT_SCHEMA, RootKwkTable, open_root_table
from kms_client.manager import KeyManager
from tests.conftest import free_port
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


@dataclass(frozen=True)
class RootApi:
    """A running root API: its base URL, the service behind it, the KMS audit, credentials."""

    url: str
    service: RootService
    auditor: RecordingAuditor
    keys: KeyManager
    gateway: str = field(repr=False)
    other_gateway: str = field(repr=False)
    admin: str = field(repr=False)


@asynccontextmanager
async def running_root_api(
    data_dir: Path,
    *,
    ssl_context: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
) -> AsyncIterator[RootApi]:
    """The root routes on a real aiohttp server; credentials gw-1, gw-2 (gateway), admin-1."""
    auditor = RecordingAuditor()
    keys = await kms_keys(data_dir / "kms-service", auditor)
    gateway, other, admin = new_credential(), new_credential(), new_credential()
    app = web.Application()
    app[CREDENTIALS] = CredentialTable(
        [
            Credential("gw-1", frozenset({"gateway"}), credential_digest(gateway)),
            Credential("gw-2", frozenset({"gateway"}), credential_digest(other)),
            Credential("admin-1", frozenset({"admin"}), credential_digest(admin)),
        ]
    )
    async with opened_table("sqlite:root.db", data_dir / "kms-service") as table:
        service = RootService(table, keys, auditor)
        add_root_routes(app, service, authenticate)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
        scheme = "https" if ssl_context else "http"
        try:
            url = f"{scheme}://{host}:{port}"
            yield RootApi(url, service, auditor, keys, gateway, other, admin)
        finally:
            await runner.cleanup()
            await keys.close()
