"""Fixtures for vault store tests: a fake clock, private servers, and each real backend.

``any_store`` is parametrized over the four engines against real servers: a
SQLite file, the shared Redis (under a unique key prefix, deleted after), a
private Redis Sentinel group and a private three-master Redis Cluster (under a
unique prefix; started once per xdist worker, only when asked for), the shared
PostgreSQL (in a fresh schema, dropped after) and a private moto_server over
HTTP (a fresh bucket per test). Tests that stop a server start their own (see
:mod:`tests.vault.servers` and :mod:`tests.proxy.sessions.servers`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
import redis

from tests.proxy.sessions.conftest import SentinelGroup
from tests.proxy.sessions.servers import Group, RedisProcess, start_cluster, start_sentinel_group
from tests.vault.servers import Moto, start_moto
from vault.postgres_store import PostgresVault
from vault.redis_store import RedisVault
from vault.redis_uri import parse_redis_uri
from vault.s3_store import S3Vault
from vault.s3_uri import parse_s3_uri
from vault.sqlite_store import SqliteVault
from vault.store import VaultStore

BACKENDS = ("sqlite", "redis", "redis-sentinel", "redis-cluster", "postgresql", "s3")


class Clock:
    """A settable clock (unix seconds) that starts at the real time."""

    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    """A private moto_server for the vault tests that do not stop it."""
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vault_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A private master + replica + Sentinel for this worker (tests never stop them)."""
    group = Group()
    try:
        yield SentinelGroup(*start_sentinel_group(tmp_path_factory.mktemp("sentinel"), group))
    finally:
        group.stop()


@pytest.fixture(scope="session")
def vault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisProcess]]:
    """A private three-master Redis Cluster (no replicas) for this worker."""
    group = Group()
    try:
        yield start_cluster(tmp_path_factory.mktemp("cluster"), group)
    finally:
        group.stop()


def ha_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of this worker's private Sentinel group or Cluster."""
    if kind == "redis-sentinel":
        group: SentinelGroup = request.getfixturevalue("vault_sentinel")
        return group.uri
    nodes: list[RedisProcess] = request.getfixturevalue("vault_cluster")
    return f"redis+cluster://127.0.0.1:{nodes[0].port}"  # the client learns the other nodes


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials for this test only; no profile or metadata lookups."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


def make_bucket(endpoint: str) -> str:
    """A new, empty bucket on the S3 endpoint (credentials from the environment)."""
    name = f"tg-vault-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    client.create_bucket(Bucket=name)
    client.close()
    return name


def s3_url(endpoint: str, bucket: str) -> str:
    return f"s3://{bucket}?region=us-east-1&endpoint={endpoint}&max-attempts=1"


@pytest.fixture
def redis_cleanup(redis_url: str, unique_prefix: str) -> Iterator[str]:
    """A key prefix on the shared Redis; every key under it is deleted after the test."""
    prefix = f"{unique_prefix}:"
    yield prefix
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


async def _backend(
    kind: str, request: pytest.FixtureRequest, clock: Clock, tmp_path: Path
) -> VaultStore:
    if kind == "sqlite":
        store: VaultStore = SqliteVault(tmp_path / "vault.db", timeout=2.0, now=clock)
        await store.open()  # type: ignore[attr-defined]
        return store
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_cleanup")
        redis_store = RedisVault(parse_redis_uri(url), prefix=prefix, timeout=2.0, now=clock)
        await redis_store.open()
        return redis_store
    if kind in ("redis-sentinel", "redis-cluster"):
        prefix = request.getfixturevalue("unique_prefix") + ":"
        target = parse_redis_uri(ha_url(kind, request))
        ha_store = RedisVault(target, prefix=prefix, timeout=2.0, now=clock)
        await ha_store.open()
        return ha_store
    if kind == "postgresql":
        url, schema = request.getfixturevalue("pg_schema")
        pg_store = PostgresVault(url, schema=schema, timeout=5.0, now=clock)
        await pg_store.open()
        return pg_store
    request.getfixturevalue("aws_env")
    server: Moto = request.getfixturevalue("moto")
    bucket = make_bucket(server.endpoint)
    s3_store = S3Vault(parse_s3_uri(s3_url(server.endpoint, bucket)), timeout=5.0, now=clock)
    await s3_store.open()
    return s3_store


@pytest.fixture(params=BACKENDS)
async def any_store(
    request: pytest.FixtureRequest, clock: Clock, tmp_path: Path
) -> AsyncIterator[VaultStore]:
    """An open store of each engine on a real server, closed after the test."""
    store = await _backend(str(request.param), request, clock, tmp_path)
    try:
        yield store
    finally:
        await store.close()
