"""RedisVault behind Sentinel and on a Redis Cluster: one slot, WAIT where the write went, failover.

The store contract runs on both topologies in test_store_contract.py. Here:
the Cluster keeps every key of a vault in one hash slot; writes wait for a
replica on the node that owns that slot and fail closed when it does not
acknowledge; durability is read from the master that takes the writes; behind
Sentinel, writes wait from the first one. Records survive a Sentinel and a
Cluster failover (private servers: the shared ones are never stopped), and
writes on the promoted master fail closed until it is durable and has a
replica again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.proxy.sessions.conftest import SentinelGroup
from tests.proxy.sessions.servers import (
    SERVICE,
    Group,
    RedisProcess,
    _cluster_port,
    info,
    start,
    start_cluster,
    start_sentinel_group,
    wait_until,
)
from tests.vault.conftest import Clock
from tests.vault.store_contract import rec
from vault.errors import VaultUnavailable
from vault.redis_store import RedisVault
from vault.redis_uri import parse_redis_uri

DURABLE = {"appendonly": "yes", "appendfsync": "always"}
VOLATILE = {"appendonly": "no", "appendfsync": "everysec"}


def cluster_uri(nodes: list[RedisProcess]) -> str:
    return f"redis+cluster://127.0.0.1:{nodes[0].port}"


@pytest.fixture
async def on_cluster(
    vault_cluster: list[RedisProcess], unique_prefix: str
) -> AsyncIterator[RedisVault]:
    store = RedisVault(parse_redis_uri(cluster_uri(vault_cluster)), prefix=unique_prefix + ":")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def node_id(node: RedisProcess) -> str:
    with node.client() as c:
        return str(c.execute_command("CLUSTER", "MYID").decode())


def owner(nodes: list[RedisProcess], key: str) -> RedisProcess:
    """The master that serves ``key``'s slot."""
    with nodes[0].client() as c:
        slot = int(c.cluster("KEYSLOT", key))
        for first, last, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return next(n for n in nodes if n.port == int(master[1]))
    raise AssertionError(f"no node serves slot {slot}")


def serves(node: RedisProcess, key: str) -> int | None:
    """The port of the master that serves ``key``'s slot, as ``node`` sees the cluster."""
    with node.client() as c:
        slot = int(c.cluster("KEYSLOT", key))
        for first, last, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return int(master[1])
    return None


def configure(node: RedisProcess, settings: dict[str, str]) -> None:
    with node.client() as c:
        for name, value in settings.items():
            c.config_set(name, value)


async def test_a_vault_lives_in_one_slot_of_the_cluster(
    on_cluster: RedisVault, vault_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    records = [rec(n) for n in range(1, 40)]
    assert await on_cluster.put_new(records) == [True] * len(records)
    home = owner(vault_cluster, f"{{{unique_prefix}:}}ids")
    with home.client() as c:
        index = f"{{{unique_prefix}:}}ids"
        keys = [f"{{{unique_prefix}:}}r:{r.id.hex()}" for r in records]
        assert {int(c.cluster("KEYSLOT", k)) for k in [index, *keys]} == {
            int(c.cluster("KEYSLOT", index))
        }
        assert c.zcard(index) == len(records)
        assert c.exists(*keys) == len(records)  # all on the one master (no MOVED)
    assert [r.id for r in await on_cluster.scan(after=None, limit=100)] == sorted(
        r.id for r in records
    )
    assert await on_cluster.delete_many([records[0].id]) == 1


async def test_cluster_durability_is_read_on_the_master_of_the_vaults_slot(
    on_cluster: RedisVault, vault_cluster: list[RedisProcess], unique_prefix: str
) -> None:
    home = owner(vault_cluster, f"{{{unique_prefix}:}}ids")
    others = [n for n in vault_cluster if n is not home]
    try:
        for node in others:
            configure(node, DURABLE)
        report = await on_cluster.durability()
        assert not report.durable  # the other masters do not hold the vault
        assert "appendonly is off" in report.detail
        configure(home, DURABLE)
        assert (await on_cluster.durability()).durable
    finally:
        for node in vault_cluster:
            configure(node, VOLATILE)


def add_cluster_replica(directory: Path, group: Group, master: RedisProcess) -> RedisProcess:
    """A new cluster node that replicates ``master``, acknowledged by it (WAIT counts it)."""
    port = _cluster_port()
    replica = start(
        directory, port, "--cluster-enabled", "yes", "--cluster-config-file",
        f"nodes-{port}.conf", "--cluster-node-timeout", "5000",
    )  # fmt: skip
    group.servers.append(replica)
    configure(master, {"repl-diskless-sync-delay": "0"})  # sync the new replica at once
    master_id = node_id(master)
    with replica.client() as c:
        c.execute_command("CLUSTER", "MEET", "127.0.0.1", master.port)

    def _knows_master() -> bool:
        with replica.client() as c:
            return master_id in c.execute_command("CLUSTER", "NODES").decode()

    wait_until(_knows_master, what="replica meeting the cluster")

    def _replicates() -> bool:
        try:
            with replica.client() as c:
                c.execute_command("CLUSTER", "REPLICATE", master_id)
            return True
        except redis.ResponseError:  # "Unknown node" until the handshake is done
            return False

    wait_until(_replicates, what="CLUSTER REPLICATE")
    wait_until(lambda: info(replica, "replication").get("master_link_status") == "up", what="link")
    with replica.client() as c:  # it serves reads (READONLY) once it knows every slot's owner
        wait_until(lambda: c.cluster("INFO").get("cluster_state") == "ok", what="replica's map")
    with master.client() as c:
        wait_until(lambda: int(c.execute_command("WAIT", 1, 200)) >= 1, what="replica acks")
    return replica


def forget(nodes: list[RedisProcess], gone: str) -> None:
    for node in nodes:
        with node.client() as c:
            with contextlib.suppress(redis.ResponseError):  # a node cannot forget itself
                c.execute_command("CLUSTER", "FORGET", gone)


async def test_cluster_writes_wait_on_the_slots_node_and_fail_closed_without_a_replica(
    vault_cluster: list[RedisProcess], unique_prefix: str, tmp_path: Path
) -> None:
    prefix = unique_prefix + ":"
    home = owner(vault_cluster, f"{{{prefix}}}ids")
    group = Group()
    replica = add_cluster_replica(tmp_path / "replica", group, home)
    replica_id = node_id(replica)
    target = parse_redis_uri(cluster_uri(vault_cluster))
    store = RedisVault(target, prefix=prefix, timeout=2.0, replica_wait_timeout=1.0)
    try:
        await store.open()
        assert store.waits_for_replica  # seen on the slot's master
        batch = [rec(n) for n in range(30)]
        assert await store.put_new(batch) == [True] * 30
        with replica.client() as c:  # acknowledged: the replica holds them already
            c.execute_command("READONLY")
            assert c.exists(*(f"{{{prefix}}}r:{r.id.hex()}" for r in batch)) == 30
        group.stop()
        wait_until(
            lambda: info(home, "replication").get("connected_slaves") == 0,
            what="master noticing the replica is gone",
        )
        for write in (store.put_new([rec(99)]), store.delete_many([batch[0].id])):
            with pytest.raises(VaultUnavailable, match="no replica acknowledged"):
                await write
        # Reads need no replica; the unacknowledged delete is in force on the master.
        assert set(await store.get_many([r.id for r in batch])) == {r.id for r in batch[1:]}
    finally:
        await store.close()
        group.stop()
        forget(vault_cluster, replica_id)


async def test_sentinel_writes_wait_for_the_replica_from_the_first_write(
    vault_sentinel: SentinelGroup, unique_prefix: str, clock: Clock
) -> None:
    store = RedisVault(parse_redis_uri(vault_sentinel.uri), prefix=unique_prefix + ":", now=clock)
    await store.open()
    try:
        assert store.waits_for_replica
        batch = [rec(n) for n in range(20)]
        assert await store.put_new(batch) == [True] * 20
        with vault_sentinel.replica.client() as c:
            assert c.exists(*(f"{unique_prefix}:r:{r.id.hex()}" for r in batch)) == 20
        report = await store.durability()  # the master's settings (these run volatile)
        assert "appendonly is off" in report.detail
    finally:
        await store.close()


@pytest.fixture
def own_group(tmp_path: Path) -> Iterator[tuple[SentinelGroup, Group]]:
    servers = Group()
    try:
        group = SentinelGroup(*start_sentinel_group(tmp_path, servers))
        with group.sentinel.client() as c:  # fail over within a second of the master's end
            c.execute_command("SENTINEL", "SET", SERVICE, "down-after-milliseconds", "500")
        with group.replica.client() as c:  # the promoted replica syncs a new one at once
            c.config_set("repl-diskless-sync-delay", "0")
        yield group, servers
    finally:
        servers.stop()


async def settle[T](call: Callable[[], Awaitable[T]]) -> T:
    """``call``, once more if it failed closed on a connection to the old master."""
    try:
        return await call()
    except VaultUnavailable:
        return await call()


def promoted(group: SentinelGroup) -> bool:
    """Whether the Sentinel names the replica as the healthy master (as clients see it)."""
    with group.sentinel.client() as c:
        state = c.sentinel_masters()[SERVICE]
    healthy = state["is_master"] and not (state["is_sdown"] or state["is_odown"])
    return bool(healthy and int(state["port"]) == group.replica.port)


async def test_records_survive_a_sentinel_failover_and_writes_resume(
    own_group: tuple[SentinelGroup, Group], tmp_path: Path, unique_prefix: str
) -> None:
    group, servers = own_group
    prefix = unique_prefix + ":"
    store = RedisVault(
        parse_redis_uri(group.uri), prefix=prefix, timeout=2.0, replica_wait_timeout=1.0
    )
    await store.open()
    try:
        before = [rec(n) for n in range(25)]
        assert await store.put_new(before) == [True] * 25
        old_port = group.master.port
        group.master.stop()

        wait_until(lambda: promoted(group), what="sentinel promoting the replica", timeout=30)
        found = await settle(lambda: store.get_many([r.id for r in before]))
        assert found == {r.id: r for r in before}  # acknowledged writes outlive the master
        with pytest.raises(VaultUnavailable, match="no replica acknowledged"):
            await store.put_new([rec(100)])  # the new master has no replica yet: fail closed
        again = start(
            tmp_path / "old-master", old_port, "--replicaof", "127.0.0.1", str(group.replica.port)
        )
        servers.servers.append(again)
        with group.replica.client() as c:
            wait_until(lambda: int(c.execute_command("WAIT", 1, 200)) >= 1, what="replica acks")
        assert await store.put_new([rec(101)]) == [True]
        assert set(await store.get_many([rec(101).id, before[0].id])) == {
            rec(101).id,
            before[0].id,
        }
    finally:
        await store.close()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[tuple[list[RedisProcess], Group]]:
    """A private three-master Cluster that notices a dead node within a second."""
    group = Group()
    try:
        nodes = start_cluster(tmp_path / "cluster", group)
        for node in nodes:
            configure(node, {"cluster-node-timeout": "1000", **DURABLE})
        yield nodes, group
    finally:
        group.stop()


async def test_records_survive_a_cluster_failover_and_writes_fail_closed_until_safe(
    own_cluster: tuple[list[RedisProcess], Group], tmp_path: Path, unique_prefix: str
) -> None:
    nodes, group = own_cluster
    prefix = unique_prefix + ":"
    index = f"{{{prefix}}}ids"
    home = owner(nodes, index)
    replica = add_cluster_replica(tmp_path / "replica", group, home)  # runs volatile
    configure(replica, {"cluster-node-timeout": "1000"})
    replica_id = node_id(replica)

    def _known_everywhere() -> bool:  # the masters ignore an election by a node they don't know
        for node in nodes:
            with node.client() as c:
                if replica_id not in c.execute_command("CLUSTER", "NODES").decode():
                    return False
        return True

    wait_until(_known_everywhere, what="every master knowing the replica")
    hosts = ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    store = RedisVault(
        parse_redis_uri(f"redis+cluster://{hosts}"),
        prefix=prefix,
        timeout=2.0,
        replica_wait_timeout=1.0,
        require_durable=True,
    )
    await store.open()
    try:
        assert store.waits_for_replica
        before = [rec(n) for n in range(30)]
        assert await store.put_new(before) == [True] * 30
        home.proc.kill()  # the slot's master dies
        home.proc.wait(10)
        survivors = [n for n in nodes if n is not home]

        wait_until(
            lambda: all(serves(n, index) == replica.port for n in [*survivors, replica]),
            what="cluster promoting the replica",
            timeout=20,
        )
        found = await settle(lambda: store.get_many([r.id for r in before]))
        assert found == {r.id: r for r in before}  # acknowledged writes outlive the master
        # The write finds the slot on another node and re-checks it before writing:
        # the promoted replica is not durable, so writes fail closed (reads go on).
        with pytest.raises(
            VaultUnavailable,
            match=rf"the master at 127\.0\.0\.1:{replica.port} is not durable \(appendonly is off\)",
        ):
            await store.put_new([rec(100)])
        assert await store.get_many([rec(100).id]) == {}  # refused before it was written
        configure(replica, DURABLE)
        await store.recheck()
        with pytest.raises(VaultUnavailable, match="no replica acknowledged"):
            await store.put_new([rec(101)])  # durable, but nothing acknowledges WAIT yet
        add_cluster_replica(tmp_path / "replica2", group, replica)
        assert await store.put_new([rec(102)]) == [True]
        assert set(await store.get_many([rec(102).id, before[0].id])) == {
            rec(102).id,
            before[0].id,
        }
    finally:
        await store.close()


async def test_a_write_that_lands_on_a_new_master_rechecks_its_durability(
    own_group: tuple[SentinelGroup, Group], tmp_path: Path, unique_prefix: str
) -> None:
    group, servers = own_group
    configure(group.master, DURABLE)  # the replica that will take over runs volatile
    store = RedisVault(
        parse_redis_uri(group.uri),
        prefix=unique_prefix + ":",
        timeout=2.0,
        replica_wait_timeout=1.0,
        require_durable=True,
    )
    await store.open()
    try:
        before = [rec(n) for n in range(10)]
        assert await store.put_new(before) == [True] * 10
        old_port = group.master.port
        group.master.stop()
        wait_until(lambda: promoted(group), what="sentinel promoting the replica", timeout=30)
        again = start(
            tmp_path / "old-master", old_port, "--replicaof", "127.0.0.1", str(group.replica.port)
        )
        servers.servers.append(again)
        with group.replica.client() as c:
            wait_until(lambda: int(c.execute_command("WAIT", 1, 200)) >= 1, what="replica acks")
        # No call has seen the new master yet: the write finds it, a replica acknowledges,
        # and the store re-checks the master it landed on before reporting success.
        not_durable = rf"the master at 127\.0\.0\.1:{group.replica.port} is not durable"
        with pytest.raises(VaultUnavailable, match=not_durable):
            await settle(lambda: store.put_new([rec(100)]))
        assert set(await store.get_many([r.id for r in before])) == {r.id for r in before}
        assert rec(100).id in await store.get_many([rec(100).id])  # applied, not reported
        configure(group.replica, DURABLE)
        await store.recheck()
        assert await store.put_new([rec(101)]) == [True]
    finally:
        await store.close()
