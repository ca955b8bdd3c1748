"""Fixtures for admin API tests: real session stores, the real audit log, a live server.

``store`` is parametrized over the SQLite store (tmp_path) and the Redis store
(the shared Redis under the test's unique prefix, cleaned afterwards). The audit
log is the real :func:`audit.open_audit_log` on tmp_path with a fresh Ed25519
checkpoint signer. ``api`` serves ``add_admin_api`` on a real port with one key
per role.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from audit import AuditConfig, AuditLog, Ed25519CheckpointSigner, open_audit_log
from audit.entry import Entry, parse_entry
from proxy.adminapi.app import add_admin_api
from proxy.adminapi.config import AdminApiConfig
from proxy.adminapi.keys import key_digest, new_api_key
from proxy.sessions.factory import open_session_store
from proxy.sessions.model import SessionGrant
from proxy.sessions.store import SessionStore, StoreSettings

ROLES = ("auditor", "operator", "admin")


def audit_entries(data_dir: Path) -> list[Entry]:
    """Every entry (checkpoints excluded) written under ``data_dir``, in time order.

    Each process (each CLI run) writes its own chain to its own file, so entries
    are ordered by timestamp, then by their place in their chain.
    """
    out: list[Entry] = []
    for path in (data_dir / "audit").glob("*.jsonl"):
        for line in path.read_bytes().splitlines(keepends=True):
            entry = parse_entry(line)
            if entry.event != "audit.checkpoint":
                out.append(entry)
    return sorted(out, key=lambda e: (e.ts, e.seq))


def events(data_dir: Path, prefix: str = "admin.") -> list[tuple[str, dict[str, object]]]:
    """(event, fields) of the entries whose event starts with ``prefix``."""
    return [
        (e.event, dict(e.fields)) for e in audit_entries(data_dir) if e.event.startswith(prefix)
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def audit_log(data_dir: Path) -> AsyncIterator[AuditLog]:
    """The real audit log (files under data_dir), closed after the test unless it was."""
    log = await open_audit_log(
        AuditConfig(), data_dir=data_dir, signer=Ed25519CheckpointSigner.generate()
    )
    try:
        yield log
    finally:
        if log.usable:
            await log.close()


@pytest.fixture
def redis_cleanup(redis_url: str, unique_prefix: str) -> Iterator[None]:
    yield
    with redis.Redis.from_url(redis_url, socket_timeout=5) as c:
        for key in list(c.scan_iter(match=f"{unique_prefix}:*", count=500)):
            c.delete(key)


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, data_dir: Path, redis_url: str, unique_prefix: str
) -> AsyncIterator[SessionStore]:
    """An open real store: SQLite in tmp_path, or the shared Redis under a unique prefix."""
    if request.param == "redis":
        request.getfixturevalue("redis_cleanup")
        uri = redis_url
    else:
        uri = f"sqlite:{data_dir / 'sessions.db'}"
    settings = StoreSettings(key_prefix=f"{unique_prefix}:")
    s = open_session_store(uri, data_dir=data_dir, workers=1, settings=settings)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def new_session(
    store: SessionStore, sub: str, *, now: float | None = None, **grant: object
) -> str:
    """Create a live session of ``sub``; its sid."""
    created = await store.create(SessionGrant(sub=sub, **grant), now=now)  # type: ignore[arg-type]
    return created.session.sid


@dataclass
class Clock:
    """The admin API's clock; sessions are created on it too (``now=clock.t``)."""

    t: float

    def __call__(self) -> float:
        return self.t


@dataclass
class Api:
    """A live admin API: its client, the key of each role, the store and the audit log."""

    client: TestClient[web.Request, web.Application]
    keys: dict[str, str]
    store: SessionStore
    audit: AuditLog
    data_dir: Path
    clock: Clock

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def key_config(keys: dict[str, str]) -> AdminApiConfig:
    """An AdminApiConfig listing ``keys`` (name = role)."""
    return AdminApiConfig.model_validate(
        {"keys": [{"name": r, "role": r, "sha256": key_digest(k)} for r, k in keys.items()]}
    )


@pytest.fixture
async def api(store: SessionStore, audit_log: AuditLog, data_dir: Path) -> AsyncIterator[Api]:
    keys = {role: new_api_key() for role in ROLES}
    clock = Clock(time.time())
    app = web.Application()
    add_admin_api(app, config=key_config(keys), store=store, auditor=audit_log, clock=clock)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Api(client, keys, store, audit_log, data_dir, clock)
