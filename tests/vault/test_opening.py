"""open_store: the backend by scheme, the durability refusal, and the production checks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import free_port
from tests.proxy.sessions.servers import RedisProcess, start
from tests.vault.conftest import make_bucket, s3_url
from tests.vault.servers import Moto
from tests.vault.store_contract import rec
from tokengate.redis_uri import SCHEMES
from vault.config import VaultConfig
from vault.errors import VaultConfigError, VaultUnavailable
from vault.opening import REDIS_SCHEMES, build_store, insecure_reasons, open_store, sqlite_path
from vault.postgres_store import PostgresVault
from vault.redis_store import RedisVault
from vault.s3_store import S3Vault
from vault.sqlite_store import SqliteVault


def test_config_defaults_forbid_unknown_keys_and_describe_every_field() -> None:
    config = VaultConfig()
    assert config.url == "sqlite:vault/vault.db"
    assert config.accept_volatile is False
    assert all(f.description for f in VaultConfig.model_fields.values())
    with pytest.raises(ValidationError, match="extra"):
        VaultConfig.model_validate({"url": "sqlite:v.db", "acept_volatile": True})
    with pytest.raises(ValidationError):
        VaultConfig(timeout=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:vault/vault.db", "DATA/vault/vault.db"),
        ("sqlite:v.db", "DATA/v.db"),
        ("sqlite:/abs/v.db", "/abs/v.db"),
        ("sqlite:///abs/v.db", "/abs/v.db"),
        ("sqlite://localhost/abs/v.db", "/abs/v.db"),
    ],
)
def test_sqlite_paths_are_relative_to_the_data_dir(url: str, expected: str) -> None:
    assert str(sqlite_path(url, Path("DATA"))) == expected


@pytest.mark.parametrize(
    "url", ["sqlite:", "sqlite:dir/", "sqlite://host/v.db", "sqlite:v.db?mode=ro"]
)
def test_bad_sqlite_urls_are_refused(url: str) -> None:
    with pytest.raises(VaultConfigError, match="sqlite"):
        sqlite_path(url, Path("DATA"))


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:v.db", SqliteVault),
        ("redis://127.0.0.1:6379/0", RedisVault),
        ("rediss://cache.internal:6380/1", RedisVault),
        ("redis+sentinel://127.0.0.1:26379/tgmaster", RedisVault),
        ("rediss+sentinel://s1.internal,s2.internal/tgmaster/2", RedisVault),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", RedisVault),
        ("rediss+cluster://n1.internal:7000", RedisVault),
        ("postgresql://db.internal/app?schema=vault", PostgresVault),
        ("postgres://db.internal/app", PostgresVault),
        ("s3://my-vault?region=eu-west-1", S3Vault),
    ],
)
def test_the_scheme_picks_the_backend(url: str, kind: type, tmp_path: Path) -> None:
    assert isinstance(build_store(VaultConfig(url=url), data_dir=tmp_path), kind)


def test_every_shared_redis_scheme_opens_the_redis_vault() -> None:
    assert set(SCHEMES) == REDIS_SCHEMES


def test_a_cluster_vault_needs_a_prefix_for_its_hash_tag(tmp_path: Path) -> None:
    config = VaultConfig(url="redis+cluster://127.0.0.1:7000", prefix="")
    with pytest.raises(VaultConfigError, match="non-empty prefix"):
        build_store(config, data_dir=tmp_path)
    assert isinstance(
        build_store(VaultConfig(url="redis://h/0", prefix=""), data_dir=tmp_path), RedisVault
    )


@pytest.mark.parametrize("url", ["memcached://h", "file:/tmp/v", "v.db", "mysql://h/db"])
def test_unknown_schemes_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(VaultConfigError, match="unknown scheme"):
        build_store(VaultConfig(url=url), data_dir=tmp_path)


async def test_the_default_is_a_durable_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    store = await open_store(VaultConfig(), data_dir=tmp_path)
    try:
        assert store.name == "sqlite"
        assert await store.put_new([rec(1)]) == [True]
        assert (tmp_path / "vault" / "vault.db").exists()
    finally:
        await store.close()


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = start(tmp_path / "volatile", free_port())  # appendonly no
    yield server
    server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = start(
        tmp_path / "durable", free_port(), "--appendonly", "yes", "--appendfsync", "always"
    )
    yield server
    server.stop()


async def test_a_volatile_redis_is_refused(volatile_redis: RedisProcess, tmp_path: Path) -> None:
    config = VaultConfig(url=f"redis://127.0.0.1:{volatile_redis.port}/0")
    with pytest.raises(VaultConfigError, match=r"appendonly is off.*accept_volatile"):
        await open_store(config, data_dir=tmp_path)


async def test_a_volatile_redis_is_accepted_when_configured_so(
    volatile_redis: RedisProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = VaultConfig(url=f"redis://127.0.0.1:{volatile_redis.port}/0", accept_volatile=True)
    with caplog.at_level(logging.WARNING, logger="vault.opening"):
        store = await open_store(config, data_dir=tmp_path)
    assert "volatile store accepted" in caplog.text
    assert await store.put_new([rec(1)]) == [True]
    await store.close()


async def test_a_durable_redis_is_accepted(durable_redis: RedisProcess, tmp_path: Path) -> None:
    config = VaultConfig(url=f"redis://127.0.0.1:{durable_redis.port}/0", prefix="t:")
    store = await open_store(config, data_dir=tmp_path)
    assert store.name == "redis"
    assert await store.put_new([rec(1)]) == [True]
    await store.close()


async def test_an_unreachable_store_fails_closed_at_start_up(tmp_path: Path) -> None:
    config = VaultConfig(url=f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    with pytest.raises(VaultUnavailable):
        await open_store(config, data_dir=tmp_path)


async def test_postgres_and_s3_open_through_their_urls(
    pg_schema: tuple[str, str], moto: Moto, aws_env: None, tmp_path: Path
) -> None:
    url, schema = pg_schema
    for config in (
        VaultConfig(url=f"{url}?schema={schema}"),
        VaultConfig(url=s3_url(moto.endpoint, make_bucket(moto.endpoint)), prefix="t/"),
    ):
        store = await open_store(config, data_dir=tmp_path)
        assert await store.put_new([rec(1)]) == [True]
        assert set(await store.get_many([rec(1).id])) == {rec(1).id}
        await store.close()


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (VaultConfig(url="redis://cache.internal:6379/0"), "plain-text Redis"),
        (VaultConfig(url="redis+sentinel://127.0.0.1,s2.internal/m"), "plain-text Redis"),
        (VaultConfig(url="redis+cluster://n1.internal:7000"), "plain-text Redis"),
        (
            VaultConfig(url="rediss+cluster://n1.internal?ssl_check_hostname=false"),
            "without ssl_check_hostname",
        ),
        (VaultConfig(url="redis+cluster://:hunter2@n1/3"), "database 0"),
        (
            VaultConfig(url="rediss://cache.internal:6379/0?ssl_check_hostname=false"),
            "without ssl_check_hostname",
        ),
        (VaultConfig(url="postgresql://db.internal/app"), "sslmode=verify-full"),
        (VaultConfig(url="postgresql://db.internal/app?sslmode=require"), "sslmode=verify-full"),
        (VaultConfig(url="postgresql:///app?host=db.internal"), "sslmode=verify-full"),
        (
            VaultConfig(url="s3://v-bucket?region=us-east-1&endpoint=http://minio.internal:9000"),
            "plain HTTP",
        ),
        (VaultConfig(accept_volatile=True), "accept_volatile"),
        (VaultConfig(url="s3://v-bucket"), "needs region"),
        (VaultConfig(url="ftp://h"), "unknown scheme"),
    ],
)
def test_insecure_settings_are_reported(config: VaultConfig, reason: str) -> None:
    reasons = insecure_reasons(config)
    assert len(reasons) == 1
    assert reason in reasons[0]


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:vault/vault.db",
        "redis://127.0.0.1:6379/0",
        "redis://localhost:6379/0",
        "rediss://cache.internal:6379/0",
        "redis+sentinel://127.0.0.1:26379,localhost:26380/tgmaster",
        "rediss+sentinel://s1.internal,s2.internal/tgmaster",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "rediss+cluster://n1.internal:7000",
        "postgresql://db.internal/app?sslmode=verify-full",
        "postgresql://127.0.0.1/app",
        "postgresql:///app?host=/var/run/postgresql",
        "s3://v-bucket?region=us-east-1",
        "s3://v-bucket?region=us-east-1&endpoint=https://minio.internal:9000",
        "s3://v-bucket?region=us-east-1&endpoint=http://127.0.0.1:9000",
    ],
)
def test_secure_settings_are_not_reported(url: str) -> None:
    assert insecure_reasons(VaultConfig(url=url)) == []
