"""RedisVault against real redis-server processes: private ones to freeze, kill and replicate."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port
from tests.proxy.sessions.servers import (
    REDIS_SERVER,
    Group,
    RedisProcess,
    start,
    wait_until,
)
from tests.vault.certs import TlsFiles, make_tls
from tests.vault.store_contract import rec
from vault.config import VaultConfig
from vault.errors import VaultConfigError, VaultUnavailable
from vault.opening import open_store
from vault.redis_store import RedisVault
from vault.redis_uri import parse_redis_uri
from vault.store import StoredRecord

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")
PASSWORD = "vault-test-secret"


def vault_for(
    server: RedisProcess, *, timeout: float = 5.0, replica_wait_timeout: float = 1.0
) -> RedisVault:
    target = parse_redis_uri(f"redis://127.0.0.1:{server.port}/0")
    return RedisVault(
        target, prefix="t:", timeout=timeout, replica_wait_timeout=replica_wait_timeout
    )


@pytest.fixture
def group() -> Iterator[Group]:
    servers = Group()
    yield servers
    for s in servers.servers:
        if s.proc.poll() is None:
            os.kill(s.proc.pid, signal.SIGCONT)
    servers.stop()


async def test_a_frozen_server_fails_closed_within_the_timeout(
    tmp_path: Path, group: Group
) -> None:
    server = start(tmp_path, free_port(), *DURABLE)
    group.servers.append(server)
    store = vault_for(server, timeout=0.5, replica_wait_timeout=0.1)
    await store.open()
    before = [rec(n) for n in range(10)]
    assert await store.put_new(before) == [True] * 10
    os.kill(server.proc.pid, signal.SIGSTOP)
    batch = [rec(n) for n in range(100, 150)]
    started = time.monotonic()
    with pytest.raises(VaultUnavailable, match="put_new failed"):
        await store.put_new(batch)
    assert time.monotonic() - started < 2.5
    with pytest.raises(VaultUnavailable):
        await store.get_many([before[0].id])
    os.kill(server.proc.pid, signal.SIGCONT)
    # The store recovers by itself, and the batch it gave up on is all there or not at all.
    found = await store.get_many([r.id for r in batch])
    assert len(found) in (0, len(batch))
    assert len(await store.get_many([r.id for r in before])) == 10
    await store.close()


async def test_a_killed_server_fails_closed_and_committed_records_survive(
    tmp_path: Path, group: Group
) -> None:
    port = free_port()
    server = start(tmp_path, port, *DURABLE)
    group.servers.append(server)
    store = vault_for(server, timeout=1.0, replica_wait_timeout=0.1)
    await store.open()
    committed = [rec(n) for n in range(20)]
    assert await store.put_new(committed) == [True] * 20
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    started = time.monotonic()
    with pytest.raises(VaultUnavailable, match="put_new failed"):
        await store.put_new([rec(100)])
    with pytest.raises(VaultUnavailable, match="get_many failed"):
        await store.get_many([committed[0].id])
    assert time.monotonic() - started < 3.0
    restarted = start(tmp_path, port, *DURABLE)  # same directory: replays the AOF
    group.servers.append(restarted)
    found = await store.get_many([r.id for r in committed] + [rec(100).id])
    assert found == {r.id: r for r in committed}
    await store.close()


async def test_writes_wait_for_a_replica_and_fail_closed_without_one(
    tmp_path: Path, group: Group
) -> None:
    master = start(tmp_path / "m", free_port(), "--repl-diskless-sync-delay", "0")
    group.servers.append(master)
    replica = start(tmp_path / "r", free_port(), "--replicaof", "127.0.0.1", str(master.port))
    group.servers.append(replica)
    wait_until(lambda: _acknowledged(master), what="replica acknowledging writes")
    store = vault_for(master, timeout=2.0, replica_wait_timeout=0.3)
    await store.open()
    assert store.waits_for_replica
    batch = [rec(n) for n in range(50)]
    assert await store.put_new(batch) == [True] * 50
    with replica.client() as c:  # acknowledged: the replica holds every record already
        assert c.exists(*(f"t:r:{r.id.hex()}" for r in batch)) == 50
    replica.stop()
    started = time.monotonic()
    with pytest.raises(VaultUnavailable, match="no replica acknowledged"):
        await store.put_new([rec(99)])
    elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 3.0  # waited for WAIT's timeout, not for the client's
    with pytest.raises(VaultUnavailable, match="no replica acknowledged"):
        await store.delete_many([batch[0].id])
    await store.close()


def _acknowledged(master: RedisProcess) -> bool:
    """Whether the replica has synced and acknowledges writes (WAIT counts it)."""
    with master.client() as c:
        c.set("probe", "1")
        return int(c.execute_command("WAIT", 1, 200)) >= 1


async def test_without_replicas_writes_do_not_wait(tmp_path: Path, group: Group) -> None:
    server = start(tmp_path, free_port())
    group.servers.append(server)
    store = vault_for(server, timeout=2.0, replica_wait_timeout=1.0)
    await store.open()
    assert not store.waits_for_replica
    started = time.monotonic()
    assert await store.put_new([rec(1)]) == [True]
    assert time.monotonic() - started < 0.5
    await store.close()


@pytest.mark.parametrize(
    ("args", "durable", "detail"),
    [
        ((), False, "appendonly is off"),
        (("--appendonly", "yes", "--appendfsync", "everysec"), False, "everysec, not always"),
        (DURABLE, True, "appendfsync always"),
        (("--rename-command", "CONFIG", '""'), False, "durability is unknown"),
    ],
)
async def test_durability_reads_the_server_config(
    tmp_path: Path, group: Group, args: tuple[str, ...], durable: bool, detail: str
) -> None:
    server = start(tmp_path, free_port(), *args)
    group.servers.append(server)
    store = vault_for(server)
    await store.open()
    report = await store.durability()
    assert report.durable is durable
    assert detail in report.detail
    await store.close()


async def open_on(server: RedisProcess, tmp_path: Path, *, accept_volatile: bool) -> RedisVault:
    """The store vault.opening builds for ``server`` (a password in the URL, never echoed)."""
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    config = VaultConfig(url=url, prefix="t:", accept_volatile=accept_volatile, timeout=2.0)
    store = await open_store(config, data_dir=tmp_path)
    assert isinstance(store, RedisVault)
    return store


def set_fsync(server: RedisProcess, value: str) -> None:
    with redis.Redis(port=server.port, password=PASSWORD, socket_timeout=5) as c:
        c.config_set("appendfsync", value)


async def test_writes_fail_closed_while_the_master_is_not_durable(
    tmp_path: Path, group: Group, caplog: pytest.LogCaptureFixture
) -> None:
    server = start(tmp_path, free_port(), *DURABLE)
    group.servers.append(server)
    with server.client() as c:
        c.config_set("requirepass", PASSWORD)
    store = await open_on(server, tmp_path, accept_volatile=False)  # durable required
    try:
        before = [rec(n) for n in range(10)]
        assert await store.put_new(before) == [True] * 10
        set_fsync(server, "everysec")
        with caplog.at_level(logging.WARNING, logger="vault.redis_store"):
            await store.recheck()  # what the periodic check does every _RECHECK seconds
            await store.recheck()  # still not durable: no second warning
        reason = rf"vault: redis: the master at 127\.0\.0\.1:{server.port} is not durable "
        reason += r"\(appendfsync is everysec, not always\)$"
        writes = (
            store.put_new([rec(100)]),
            store.delete_many([before[0].id]),
            store.replace_outer(before[1], StoredRecord(before[1].id, 2, b"new", before[1].meta)),
        )
        for write in writes:
            with pytest.raises(VaultUnavailable, match=reason) as refused:
                await write
            assert PASSWORD not in str(refused.value)
        # Reads go on, and the refused writes were not applied.
        assert await store.get_many([r.id for r in before]) == {r.id: r for r in before}
        assert await store.get_many([rec(100).id]) == {}
        assert [r.id for r in await store.scan(after=None, limit=20)] == sorted(
            r.id for r in before
        )
        warned = [r.getMessage() for r in caplog.records if r.name == "vault.redis_store"]
        assert len(warned) == 1
        assert "not durable" in warned[0]
        assert PASSWORD not in warned[0]
        caplog.clear()
        set_fsync(server, "always")
        with caplog.at_level(logging.WARNING, logger="vault.redis_store"):
            await store.recheck()
        assert "durable again" in caplog.text
        assert await store.put_new([rec(100)]) == [True]
        assert await store.delete_many([before[0].id]) == 1
    finally:
        await store.close()


async def test_a_store_that_accepts_volatile_storage_keeps_writing(
    tmp_path: Path, group: Group, caplog: pytest.LogCaptureFixture
) -> None:
    server = start(tmp_path, free_port(), *DURABLE)
    group.servers.append(server)
    with server.client() as c:
        c.config_set("requirepass", PASSWORD)
    store = await open_on(server, tmp_path, accept_volatile=True)
    try:
        set_fsync(server, "everysec")
        with caplog.at_level(logging.WARNING, logger="vault.redis_store"):
            await store.recheck()
        assert await store.put_new([rec(1)]) == [True]
        assert await store.delete_many([rec(1).id]) == 1
        assert not caplog.records  # nothing to warn about: volatile storage was accepted
    finally:
        await store.close()


async def test_prefixes_keep_stores_apart(redis_url: str, redis_cleanup: str) -> None:
    target = parse_redis_uri(redis_url)
    one = RedisVault(target, prefix=redis_cleanup + "one:")
    two = RedisVault(target, prefix=redis_cleanup + "two:")
    await one.open()
    await two.open()
    assert await one.put_new([rec(1)]) == [True]
    assert await two.put_new([rec(1)]) == [True]
    assert await two.get_many([rec(2).id]) == {}
    assert await one.delete_many([rec(1).id]) == 1
    assert set(await two.get_many([rec(1).id])) == {rec(1).id}
    await one.close()
    await two.close()


async def test_scan_forgets_ids_whose_key_is_gone(redis_url: str, redis_cleanup: str) -> None:
    store = RedisVault(parse_redis_uri(redis_url), prefix=redis_cleanup)
    await store.open()
    await store.put_new([rec(n) for n in range(1, 6)])
    with redis.Redis.from_url(redis_url) as raw:
        raw.delete(f"{redis_cleanup}r:{rec(2).id.hex()}")  # as if PX expiry purged it
        assert [r.id for r in await store.scan(after=None, limit=3)] == [
            rec(n).id for n in (1, 3, 4)
        ]
        assert raw.zcard(f"{redis_cleanup}ids") == 4
    await store.close()


async def test_a_malformed_value_fails_closed(redis_url: str, redis_cleanup: str) -> None:
    store = RedisVault(parse_redis_uri(redis_url), prefix=redis_cleanup)
    await store.open()
    with redis.Redis.from_url(redis_url) as raw:
        raw.set(f"{redis_cleanup}r:{rec(1).id.hex()}", b"not a record")
    with pytest.raises(VaultUnavailable, match="malformed"):
        await store.get_many([rec(1).id])
    await store.close()


async def test_an_unreachable_server_fails_closed_at_open() -> None:
    store = RedisVault(parse_redis_uri(f"redis://127.0.0.1:{free_port()}/0"), timeout=0.5)
    with pytest.raises(VaultUnavailable, match="replication check failed"):
        await store.open()
    await store.close()


def test_uri_parsing_keeps_tls_options_and_hides_the_password() -> None:
    target = parse_redis_uri(
        "rediss://app:s3cret@redis.internal:6380/2?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem"
        "&ssl_keyfile=/k.pem"
    )
    assert (target.hosts, target.db, target.tls) == ((("redis.internal", 6380),), 2, True)
    assert dict(target.tls_options)["ssl_ca_certs"] == "/ca.pem"
    assert target.password == "s3cret"
    assert "s3cret" not in repr(target)
    assert "s3cret" not in target.description


def test_uri_parsing_of_sentinel_and_cluster_forms() -> None:
    sentinel = parse_redis_uri(
        "rediss+sentinel://app:s3cret@s1.internal,s2.internal:26380/tgmaster/3"
        "?sentinel_password=sent1nel&ssl_ca_certs=/ca.pem"
    )
    assert (sentinel.kind, sentinel.service, sentinel.db) == ("sentinel", "tgmaster", 3)
    assert sentinel.hosts == (("s1.internal", 26379), ("s2.internal", 26380))
    assert sentinel.sentinel_password == "sent1nel"
    assert (
        sentinel.description == "rediss+sentinel://s1.internal:26379,s2.internal:26380/tgmaster/3"
    )
    cluster = parse_redis_uri("redis+cluster://n1:7000,n2")
    assert (cluster.kind, cluster.hosts) == ("cluster", (("n1", 7000), ("n2", 6379)))
    for secret in ("s3cret", "sent1nel"):
        assert secret not in repr(sentinel)
        assert secret not in sentinel.description


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("redis://127.0.0.1:6379/0?ssl_ca_certs=/ca.pem", "TLS options need rediss"),
        ("rediss://h:6379/0?timeout=1", "unknown option"),
        ("redis://:6379/0", "host is missing"),
        ("redis://h:6379/zero", "database number"),
        ("redis://h:port/0", "port is not a number"),
        ("memcached://h", "unknown redis scheme"),
        ("redis://:hunter2@a,b/0", "names one host"),
        ("redis+sentinel://:hunter2@s1:26379", "needs /<service name>"),
        ("redis+cluster://:hunter2@n1:7000/1", "database 0 only"),
        ("redis+cluster://:hunter2@n1?sentinel_password=hunter2", "unknown option"),
        ("rediss+sentinel://:hunter2@s1/m?sentinel_pasword=hunter2", "unknown option"),
        ("redis://:hunter2@[::1", "not a valid redis URI"),
    ],
)
def test_bad_uris_are_refused(uri: str, problem: str) -> None:
    with pytest.raises(VaultConfigError, match=problem) as caught:
        parse_redis_uri(uri)
    assert str(caught.value).startswith("vault: url: ")
    assert "hunter2" not in str(caught.value)


def _start_tls_redis(directory: Path, tls: TlsFiles) -> tuple[subprocess.Popen[bytes], int]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key),
         "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def _up() -> bool:
        try:
            with redis.Redis(port=port, ssl=True, ssl_ca_certs=str(tls.ca), socket_timeout=1) as c:
                return bool(c.ping())
        except (redis.RedisError, OSError):
            return False

    wait_until(_up, what="tls redis-server")
    return proc, port


async def test_rediss_verifies_the_server_against_the_given_ca(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    other = make_tls(tmp_path / "other")
    proc, port = _start_tls_redis(tmp_path / "redis", tls)
    try:
        good = RedisVault(parse_redis_uri(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={tls.ca}"))
        await good.open()
        assert await good.put_new([rec(1)]) == [True]
        await good.close()
        wrong = RedisVault(
            parse_redis_uri(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={other.ca}"), timeout=1.0
        )
        with pytest.raises(VaultUnavailable):
            await wrong.open()
        await wrong.close()
        plain = RedisVault(parse_redis_uri(f"redis://127.0.0.1:{port}/0"), timeout=1.0)
        with pytest.raises(VaultUnavailable):
            await plain.open()
        await plain.close()
    finally:
        proc.terminate()
        proc.wait(10)
