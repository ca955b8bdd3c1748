"""RedisVault (``redis[s]://``, ``redis[s]+sentinel://``, ``redis[s]+cluster://``): vault
records in Redis, shared by gateway replicas.

Rules:
- Keys: ``<prefix>r:<hex id>`` holds one :mod:`vault.store_blob` value (PX set
  from ``expires`` for volatile records); ``<prefix>ids`` is a sorted set of
  hex ids for ``scan`` in id order. The prefix lets deployments and tests
  share a server. On a Redis Cluster the prefix is a hash tag
  (``{<prefix>}r:<hex id>``, ``{<prefix>}ids``): every key of the vault lives
  in ONE slot, so a batch stays one atomic script. The cluster gives failover
  (a replica of that slot's master takes over), not sharding: one master
  holds the whole vault.
- Every write is one Lua script for the whole batch (atomic: a batch is all or
  nothing), sent in one round trip together with ``WAIT 1 <timeout>`` on the
  same connection (on a Cluster: of the node that owns the vault's slot) once
  that master has been seen with a connected replica; behind Sentinel replicas
  exist by construction, so writes wait from the first one. Zero
  acknowledgements is :class:`~vault.errors.VaultUnavailable`: the record may
  exist on the master alone, but no token leaves the gateway, so a failover
  cannot lose one. Replication is checked at open, every ``_RECHECK``
  seconds, and before a write when the master has moved since the last check;
  once a replica has been seen, writes keep waiting for one (a lost replica,
  or a promoted one without replicas, fails closed rather than silently
  dropping the guarantee).
- Reads are one MGET. Expiry is judged by the caller's clock as well as by
  Redis's PX, so an expired record is never returned, and its id is free.
- Durable only with ``appendonly yes`` and ``appendfsync always``
  (:meth:`RedisVault.durability`) on the master that takes the writes (the
  Sentinel's master, the Cluster node owning the vault's slot);
  :func:`vault.opening.open_store` refuses anything else unless volatile
  storage is accepted. A store built with ``require_durable`` (volatile
  storage not accepted) re-reads that master's settings with every
  replication check, and at once when a write finds the master moved (a
  failover): while the master is not durable, writes fail closed
  (VaultUnavailable naming the master and the setting) and reads go on. A
  warning is logged once per change of that state.
- Every call is bounded by the client's socket timeouts; no retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Final

import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from vault import redis_scripts as lua
from vault.errors import VaultConfigError, VaultUnavailable
from vault.redis_uri import Client, RedisTarget, connect
from vault.store import Durability, StoredRecord
from vault.store_blob import check_rewrap, first_occurrences, is_live, pack, unpack

log = logging.getLogger(__name__)
DEFAULT_PREFIX: Final = "tokengate:vault:"
_RECHECK: Final = 30.0  # seconds between replication checks
_FAILURES: Final = (RedisError, RedisClusterException, OSError, TimeoutError)


class RedisVault:
    """Vault records in one Redis database (a master, optionally with replicas).

    The master is one server, the master of a Sentinel service, or the
    Cluster node that owns the vault's hash slot.
    """

    def __init__(
        self,
        target: RedisTarget,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 5.0,
        replica_wait_timeout: float = 1.0,
        require_durable: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        """``require_durable``: writes fail closed whenever the master is not durable."""
        self._target = target
        self._clustered = target.kind == "cluster"
        if self._clustered and not prefix:
            raise VaultConfigError("vault: prefix: a Redis Cluster needs a non-empty prefix")
        self._prefix = "{" + prefix + "}" if self._clustered else prefix
        self._index = f"{self._prefix}ids"
        self._timeout = timeout + replica_wait_timeout  # WAIT blocks inside one call
        self._wait_ms = max(1, int(replica_wait_timeout * 1000))
        self._now = now
        self._client: Client | None = None
        self._extra: list[aredis.Redis] = []
        self._replicated = target.kind == "sentinel"  # Sentinel: replicas by construction
        self._checked_at = -_RECHECK
        self._require_durable = require_durable
        self._checked_master: str | None = None  # host:port the last check read
        self._not_durable: str | None = None  # why writes are refused, while they are

    @property
    def name(self) -> str:
        """``redis``."""
        return "redis"

    @property
    def waits_for_replica(self) -> bool:
        """Whether writes wait for one replica's acknowledgement."""
        return self._replicated

    async def open(self) -> None:
        """Connect, and learn whether the master has replicas (and is durable, if required)."""
        if self._client is None:
            self._client, self._extra = connect(self._target, timeout=self._timeout)
        await self._check(force=True)

    async def recheck(self) -> None:
        """The periodic check, now: replicas, and durability when it is required."""
        await self._check(force=True)

    async def close(self) -> None:
        """Close the connection pools (and the Sentinel connections); idempotent."""
        clients = [c for c in (self._client, *self._extra) if c is not None]
        self._client, self._extra = None, []
        for client in clients:
            await client.aclose()

    async def put_new(self, records: Sequence[StoredRecord]) -> list[bool]:
        """One script inserts every absent (or expired) id; then WAIT when replicated."""
        batch = list(records)
        if not batch:
            return []
        first = first_occurrences(batch)
        now = self._now()
        unique = [batch[i] for i in first.values()]
        args: list[bytes | str | int | float] = [now]
        for r in unique:
            px = 0 if r.expires is None else max(1, int((r.expires - now) * 1000))
            args += [pack(r), px, r.id.hex()]
        keys = [self._index, *(self._key(r.id) for r in unique)]
        flags = await self._write("put_new", lua.PUT_NEW, keys, args)
        if not isinstance(flags, list) or len(flags) != len(unique):
            raise VaultUnavailable("vault: redis: put_new got a malformed reply")
        inserted = {r.id for r, flag in zip(unique, flags, strict=True) if _int(flag) == 1}
        return [first[r.id] == i and r.id in inserted for i, r in enumerate(batch)]

    async def get_many(self, ids: Sequence[bytes]) -> dict[bytes, StoredRecord]:
        """One MGET; the live records among ``ids``."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        async with self._guard("get_many") as client:
            values = await client.mget([self._key(i) for i in wanted])
        now = self._now()
        found: dict[bytes, StoredRecord] = {}
        for record_id, value in zip(wanted, values, strict=True):
            if value is not None:
                record = unpack(record_id, _bytes(value), where="redis")
                if is_live(record.expires, now):
                    found[record_id] = record
        return found

    async def delete_many(self, ids: Sequence[bytes]) -> int:
        """One script deletes the records and their index entries; the live ones counted."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        keys = [self._index, *(self._key(i) for i in wanted)]
        count = await self._write("delete_many", lua.DELETE, keys, [self._now(), *_hex(wanted)])
        return _int(count)

    async def scan(self, *, after: bytes | None, limit: int) -> list[StoredRecord]:
        """Walk the id index from ``after``; drop index entries whose key Redis purged."""
        cursor = "-" if after is None else "(" + after.hex()
        found: list[StoredRecord] = []
        while len(found) < limit:
            want = limit - len(found)
            async with self._guard("scan") as client:
                members = [
                    _text(m) for m in await client.zrangebylex(self._index, cursor, "+", 0, want)
                ]
                if not members:
                    break
                values = await client.mget([self._prefix + "r:" + m for m in members])
            now = self._now()
            gone = []
            for member, value in zip(members, values, strict=True):
                if value is None:
                    gone.append(member)
                    continue
                record = unpack(bytes.fromhex(member), _bytes(value), where="redis")
                if is_live(record.expires, now):
                    found.append(record)
            if gone:
                keys = [self._index, *(self._prefix + "r:" + m for m in gone)]
                async with self._guard("scan") as client:
                    await client.eval(lua.FORGET_GONE, len(keys), *keys, *gone)
            cursor = "(" + members[-1]
            if len(members) < want:
                break
        return found

    async def replace_outer(self, old: StoredRecord, new: StoredRecord) -> bool:
        """Compare-and-set in one script (TTL kept); then WAIT when replicated."""
        check_rewrap(old, new)
        if not is_live(old.expires, self._now()):
            return False
        swapped = StoredRecord(old.id, new.key_version, new.outer, old.meta, old.expires)
        args = [pack(old), pack(swapped)]
        return _int(await self._write("replace_outer", lua.REPLACE, [self._key(old.id)], args)) == 1

    async def durability(self) -> Durability:
        """Durable iff ``appendonly yes`` and ``appendfsync always``; unknown without CONFIG."""
        durable, why = await self._read_durability("durability")
        return Durability(durable, f"redis: {why}")

    async def _read_durability(self, what: str) -> tuple[bool, str]:
        """Whether the master that takes the writes is durable, and why (no ``redis:``)."""
        try:
            async with self._guard(what) as client:
                config = await client.config_get("append*", **self._on_master(client))
        except VaultUnavailable as e:
            if isinstance(e.__cause__, ResponseError):
                return False, "CONFIG GET refused; durability is unknown"
            raise
        appendonly, fsync = config.get("appendonly"), config.get("appendfsync")
        if appendonly != "yes":
            return False, "appendonly is off"
        if fsync != "always":
            return False, f"appendfsync is {fsync}, not always"
        return True, "appendonly yes, appendfsync always"

    def _key(self, record_id: bytes) -> str:
        return f"{self._prefix}r:{record_id.hex()}"

    async def _write(
        self, what: str, script: str, keys: list[str], args: Sequence[bytes | str | int | float]
    ) -> object:
        await self._check(force=self._moved())
        self._refuse_if_not_durable()
        async with self._guard(what) as client:
            pipe = client.pipeline(transaction=False)
            pipe.eval(script, len(keys), *keys, *args)
            if self._replicated:  # same connection as the script: on a Cluster, the slot's node
                pipe.execute_command("WAIT", 1, self._wait_ms, **self._on_master(client))
            results = await pipe.execute()
        if self._replicated and int(results[1]) < 1:
            raise VaultUnavailable(f"vault: redis: {what}: no replica acknowledged the write")
        if self._require_durable and self._moved():  # this write found a new master
            await self._check(force=True)
            self._refuse_if_not_durable()  # applied there, but no token leaves
        return results[0]

    async def _check(self, *, force: bool) -> None:
        """Every ``_RECHECK`` s (or when forced): replicas, and durability if required."""
        if not force and time.monotonic() - self._checked_at < _RECHECK:
            return
        async with self._guard("replication check") as client:
            if isinstance(client, RedisCluster):
                await client.initialize()  # the slot map, so the vault's node is known
            info = await client.info("replication", **self._on_master(client))
        self._replicated = self._replicated or int(info.get("connected_slaves", 0)) > 0
        if self._require_durable:
            durable, why = await self._read_durability("durability check")
            self._judge(None if durable else why)
        self._checked_master = self._master_address()
        self._checked_at = time.monotonic()

    def _judge(self, why: str | None) -> None:
        """Record why writes are refused (None: they are not); log each change once."""
        where = self._master_address() or self._target.description
        reason = None if why is None else f"the master at {where} is not durable ({why})"
        if reason != self._not_durable:
            if reason is None:
                log.warning("vault: redis: the master at %s is durable again; writes resume", where)
            else:
                log.warning("vault: redis: %s; writes fail closed until it is", reason)
        self._not_durable = reason

    def _refuse_if_not_durable(self) -> None:
        if self._not_durable is not None:
            raise VaultUnavailable(f"vault: redis: {self._not_durable}")

    def _master_address(self) -> str | None:
        """``host:port`` of the master as the client knows it now (no IO); None if unknown."""
        client = self._client
        if isinstance(client, RedisCluster):
            try:
                node = client.get_node_from_key(self._index)
            except RedisClusterException:
                return None
            return None if node is None else str(node.name)
        if self._target.kind == "sentinel":
            address = getattr(getattr(client, "connection_pool", None), "master_address", None)
            return None if address is None else _address(str(address[0]), int(address[1]))
        return _address(*self._target.hosts[0])

    def _moved(self) -> bool:
        """Whether the master now differs from the one the last check read (a failover)."""
        address = self._master_address()
        return address is not None and address != self._checked_master

    def _on_master(self, client: Client) -> dict[str, ClusterNode]:
        """On a Cluster, ``target_nodes`` naming the node that owns the vault's slot."""
        if not isinstance(client, RedisCluster):
            return {}
        node = client.get_node_from_key(self._index)
        if node is None:
            raise VaultUnavailable("vault: redis: no cluster node owns the vault's slot")
        return {"target_nodes": node}

    @asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[Client]:
        """The client, with every failure turned into VaultUnavailable (fail closed)."""
        if self._client is None:
            raise VaultUnavailable("vault: redis: store is not open")
        try:
            async with asyncio.timeout(self._timeout + 1):
                yield self._client
        except _FAILURES as e:
            where = self._target.description
            raise VaultUnavailable(
                f"vault: redis: {what} failed at {where} ({type(e).__name__})"
            ) from e


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _hex(ids: list[bytes]) -> list[str]:
    return [i.hex() for i in ids]


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise VaultUnavailable("vault: redis: a script gave a malformed reply")
    return value


def _bytes(value: bytes | str) -> bytes:
    if not isinstance(value, bytes):
        raise VaultUnavailable("vault: redis: a stored record is not bytes")
    return value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
