"""Fixtures for session-store tests: every backend, private Redis topologies, cleanup.

``stores`` is parametrized over the five ways a gateway can keep sessions:
in memory, in a SQLite file (tmp_path), in the shared Redis (under the test's
unique prefix), behind a private Sentinel (master + replica + Sentinel) and
in a private three-node Redis Cluster. The private topologies are started once
per xdist worker and only when a test asks for them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from proxy.sessions.factory import open_session_store
from proxy.sessions.store import SessionStore, StoreSettings
from tests.proxy.sessions.servers import (
    SERVICE,
    Group,
    RedisProcess,
    start_cluster,
    start_sentinel_group,
)

BACKENDS = ("memory", "sqlite", "redis", "sentinel", "cluster")
SHARED_BACKENDS = ("sqlite", "redis", "sentinel", "cluster")  # seen by several processes
T0 = 1_700_000_000.0  # injected clock origin


@dataclass(frozen=True)
class SentinelGroup:
    master: RedisProcess
    replica: RedisProcess
    sentinel: RedisProcess

    @property
    def uri(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"


@pytest.fixture(scope="session")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A private master + replica + Sentinel for this worker (never stopped by tests)."""
    group = Group()
    try:
        yield SentinelGroup(*start_sentinel_group(tmp_path_factory.mktemp("sentinel"), group))
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisProcess]]:
    """A private three-master Redis Cluster for this worker."""
    group = Group()
    try:
        yield start_cluster(tmp_path_factory.mktemp("cluster"), group)
    finally:
        group.stop()


def settings(prefix: str, **overrides: object) -> StoreSettings:
    """Test settings: the defaults, a unique key prefix, short replica waits."""
    values: dict[str, object] = {"key_prefix": f"{prefix}:", "revoke_wait_timeout": 0.5}
    values.update(overrides)
    return StoreSettings(**values)  # type: ignore[arg-type]


@dataclass
class Stores:
    """Opens stores of one backend on one location (same file, same Redis prefix)."""

    backend: str
    uri: str
    data_dir: Path
    prefix: str
    cleanup_urls: list[str]
    opened: list[SessionStore] = field(default_factory=list)

    async def open(self, **overrides: object) -> SessionStore:
        store = open_session_store(
            self.uri, data_dir=self.data_dir, workers=1, settings=settings(self.prefix, **overrides)
        )
        await store.open()
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()
        for url in self.cleanup_urls:
            with redis.Redis.from_url(url, socket_timeout=5) as c:
                keys = list(c.scan_iter(match=f"{self.prefix}:*", count=500))
                for key in keys:  # one by one: on a Cluster the keys live on different nodes
                    c.delete(key)


def backend_uri(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, redis_url: str
) -> tuple[str, list[str]]:
    """The store URI of ``backend`` and the Redis servers to clean afterwards."""
    if backend == "memory":
        return "memory:", []
    if backend == "sqlite":
        return f"sqlite:{tmp_path / 'sessions.db'}", []
    if backend == "redis":
        return redis_url, [redis_url]
    if backend == "sentinel":
        group: SentinelGroup = request.getfixturevalue("sentinel_group")
        return group.uri, [f"redis://127.0.0.1:{group.master.port}/0"]
    nodes: list[RedisProcess] = request.getfixturevalue("redis_cluster")
    hosts = ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    return f"redis+cluster://{hosts}", [f"redis://127.0.0.1:{n.port}/0" for n in nodes]


@pytest.fixture(params=BACKENDS)
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str, redis_url: str
) -> AsyncIterator[Stores]:
    """A store factory for each backend."""
    uri, nodes = backend_uri(request, request.param, tmp_path, redis_url)
    factory = Stores(request.param, uri, tmp_path, unique_prefix, nodes)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture(params=SHARED_BACKENDS)
async def shared_stores(
    request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str, redis_url: str
) -> AsyncIterator[Stores]:
    """A store factory for each backend several processes can share."""
    uri, nodes = backend_uri(request, request.param, tmp_path, redis_url)
    factory = Stores(request.param, uri, tmp_path, unique_prefix, nodes)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def store(stores: Stores) -> SessionStore:
    """One open store of each backend."""
    return await stores.open()
