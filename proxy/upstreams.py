"""Pooled keep-alive client sessions, one per upstream.

Sessions never decompress (bodies pass through byte for byte), never follow
redirects, and never keep cookies: the gateway is a proxy, not a browser.
A reload keeps the session of every upstream whose settings did not change, so
its warm connections survive; a changed or removed upstream's session is closed
once the requests still using it have finished.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from proxy.config import Upstream

log = logging.getLogger("tokengate.upstreams")


def _ssl_context(up: Upstream) -> ssl.SSLContext | bool:
    if not up.url.startswith("https://"):
        return True
    ctx = ssl.create_default_context(cafile=str(up.tls.ca) if up.tls.ca else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if up.tls.client_cert is not None:
        ctx.load_cert_chain(str(up.tls.client_cert.cert), str(up.tls.client_cert.key))
    return ctx


@dataclass(slots=True)
class _Pooled:
    config: Upstream
    session: aiohttp.ClientSession
    users: int = 0
    retired: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)


def _new_session(up: Upstream) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=up.max_connections,
        limit_per_host=up.max_connections,
        keepalive_timeout=30,
        ssl=_ssl_context(up),
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None),
        raise_for_status=False,
        trust_env=False,
    )


class _Lease:
    """One request's use of a pooled session: counted, so a retired pool closes when idle.

    A plain class rather than ``asynccontextmanager``: it runs once per request.
    """

    __slots__ = ("_pooled",)

    def __init__(self, pooled: _Pooled) -> None:
        self._pooled = pooled

    async def __aenter__(self) -> tuple[aiohttp.ClientSession, Upstream]:
        pooled = self._pooled
        pooled.users += 1
        return pooled.session, pooled.config

    async def __aexit__(self, *exc: object) -> None:
        pooled = self._pooled
        pooled.users -= 1
        if pooled.retired and pooled.users == 0:
            pooled.idle.set()


class UpstreamPool:
    """Client sessions by upstream name."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pooled] = {}
        self._retired: dict[int, _Pooled] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def update(self, upstreams: Mapping[str, Upstream]) -> None:
        """Adopt a new set of upstreams; unchanged ones keep their session."""
        for name, pooled in list(self._pools.items()):
            if upstreams.get(name) != pooled.config:
                del self._pools[name]
                self._retire(name, pooled)
        for name, up in upstreams.items():
            if name not in self._pools:
                self._pools[name] = _Pooled(config=up, session=_new_session(up))

    def _retire(self, name: str, pooled: _Pooled) -> None:
        pooled.retired = True
        self._retired[id(pooled)] = pooled
        if pooled.users == 0:
            pooled.idle.set()
        task = asyncio.get_running_loop().create_task(
            self._close_when_idle(pooled), name=f"upstream-retire-{name}"
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_when_idle(self, pooled: _Pooled) -> None:
        await pooled.idle.wait()
        await pooled.session.close()
        self._retired.pop(id(pooled), None)

    def use(self, name: str) -> _Lease:
        """Borrow the session of ``name`` for one request (``async with``)."""
        return _Lease(self._pools[name])

    async def close(self) -> None:
        """Close every session (shutdown), retired ones still draining included."""
        for pending in list(self._closing):
            pending.cancel()
        for pooled in [*self._pools.values(), *self._retired.values()]:
            await pooled.session.close()
        self._pools.clear()
        self._retired.clear()
