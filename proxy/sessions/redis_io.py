"""Every exchange of the Redis session store with Redis: counted, bounded, fail-closed.

:class:`RedisIO` owns the client. :meth:`RedisIO.call` sends one command,
:meth:`RedisIO.pipeline` one pipeline (on a Cluster, split by node and sent to
the nodes concurrently), and :meth:`RedisIO.replicated` a pipeline followed, on
the same connection of each written node, by ``WAIT <n> <timeout>``. Each is
one round trip in ``round_trips``, runs under a timeout, and turns any Redis,
socket or timeout error into SessionStoreUnavailable: the store never answers
"allowed" for a question it could not ask.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from proxy.sessions.errors import SessionStoreUnavailable
from proxy.sessions.redis_uri import Client, RedisTarget, connect
from proxy.sessions.store import StoreSettings

Pipe = Pipeline | ClusterPipeline
_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)


class RedisIO:
    """The client of one store, with a round-trip counter."""

    def __init__(self, target: RedisTarget, settings: StoreSettings, *, replicas: int) -> None:
        self._target = target
        self._settings = settings
        self._replicas = replicas
        self._client: Client | None = None
        self._extra: list[Client] = []
        self.round_trips = 0
        self.clustered = False  # set by open(): a Cluster cannot run one script over all slots

    @property
    def replicas(self) -> int:
        """Replicas that must acknowledge a replicated write."""
        return self._replicas

    async def open(self) -> None:
        """Build the client and ping (through the Sentinels or the cluster map)."""
        s = self._settings
        # The socket must outlive a WAIT; the asyncio timeout bounds ordinary calls.
        self._client, extra = connect(
            self._target,
            socket_timeout=s.timeout + s.revoke_wait_timeout,
            connect_timeout=s.timeout,
        )
        self._extra = list(extra)
        self.clustered = isinstance(self._client, RedisCluster)
        await self.call("open", lambda c: c.ping())

    async def close(self) -> None:
        """Close every pool (and the Sentinel connections)."""
        clients = [c for c in (self._client, *self._extra) if c is not None]
        self._client, self._extra = None, []
        for c in clients:
            await c.aclose()

    async def call[T](
        self, what: str, fn: Callable[[Client], Awaitable[T]], *, extra: float = 0.0
    ) -> T:
        """One command (or one pipeline built by ``fn``): one round trip."""
        client = self._client
        if client is None:
            raise SessionStoreUnavailable("sessions: redis store is not open")
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._settings.timeout + extra):
                return await fn(client)
        except _FAILURES as e:
            raise SessionStoreUnavailable(
                f"sessions: redis store {self._target.description} failed: {what}"
            ) from e

    async def pipeline(
        self, what: str, build: Callable[[Pipe], object], *, extra: float = 0.0
    ) -> list[object]:
        """The commands ``build`` queues, sent as one non-transactional pipeline."""

        async def _run(c: Client) -> list[object]:
            p = c.pipeline(transaction=False)
            build(p)
            results: list[object] = await p.execute()
            return results

        return await self.call(what, _run, extra=extra)

    async def replicated(
        self, what: str, written: Sequence[str], build: Callable[[Pipe], object]
    ) -> list[object]:
        """Like :meth:`pipeline`, then WAIT on every node that took one of ``written``."""
        if self._replicas == 0:
            return await self.pipeline(what, build)
        wait_ms = max(1, int(self._settings.revoke_wait_timeout * 1000))
        waits = 0

        def _build(p: Pipe) -> None:
            nonlocal waits
            build(p)
            client = self._client
            if isinstance(client, RedisCluster) and isinstance(p, ClusterPipeline):
                nodes = {}
                for key in written:
                    node = client.get_node_from_key(key)
                    if node is None:
                        raise SessionStoreUnavailable("sessions: no cluster node owns a key")
                    nodes[node.name] = node
                for node in nodes.values():
                    p.execute_command("WAIT", self._replicas, wait_ms, target_nodes=node)
                    waits += 1
            else:
                p.execute_command("WAIT", self._replicas, wait_ms)
                waits = 1

        results = await self.pipeline(what, _build, extra=self._settings.revoke_wait_timeout)
        acks = results[len(results) - waits :]
        if any(not isinstance(a, int) or a < self._replicas for a in acks):
            raise SessionStoreUnavailable(
                f"sessions: {what} not acknowledged by {self._replicas} replica(s)"
            )
        return results[: len(results) - waits]
