"""Redis URIs shared by the session store and the vault, and the redis-py client each builds.

Forms (``rediss`` variants use TLS; ``user:password@`` is optional everywhere):

- ``redis://host:6379/0``: one server.
- ``redis+sentinel://host1:26379,host2:26379/<service>[/<db>]``: the master of
  ``service`` as the Sentinels name it (replicas exist by construction).
- ``redis+cluster://host1:6379,host2:6379``: a Redis Cluster (database 0).

Query options: ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
``ssl_check_hostname`` (TLS, ``rediss`` forms only) and, for Sentinel,
``sentinel_username`` / ``sentinel_password`` when the Sentinels authenticate
differently from the data nodes. Anything else is a :class:`ConfigError`
whose message names the problem but never the URI (it may hold a password);
callers prefix it with where the URI came from. Every client gets socket and
connect timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel

from tokengate.errors import ConfigError

Client = aredis.Redis | RedisCluster
Kind = Literal["single", "sentinel", "cluster"]

SCHEMES: Final[dict[str, tuple[Kind, bool]]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_TLS_OPTIONS: Final = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})
_SENTINEL_OPTIONS: Final = frozenset({"sentinel_username", "sentinel_password"})


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URI (passwords never appear in ``repr`` or ``description``)."""

    kind: Kind
    tls: bool
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    service: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_options: tuple[tuple[str, str], ...] = ()
    check_hostname: bool = True
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        """Scheme, hosts, service and a non-zero database; never credentials."""
        scheme = ("rediss" if self.tls else "redis") + (
            "" if self.kind == "single" else f"+{self.kind}"
        )
        hosts = ",".join(f"{h}:{p}" for h, p in self.hosts)
        tail = (f"/{self.service}" if self.service else "") + (f"/{self.db}" if self.db else "")
        return f"{scheme}://{hosts}{tail}"


def parse_redis_uri(uri: str) -> RedisTarget:
    """Parse ``uri``; ConfigError naming the problem (never echoing the URI or a password)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise ConfigError("not a valid redis URI") from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"unknown redis scheme '{parts.scheme}'")
    kind, tls = SCHEMES[parts.scheme]
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hosts = tuple(_host(h, 26379 if kind == "sentinel" else 6379) for h in hostlist.split(","))
    if kind == "single" and len(hosts) != 1:
        raise ConfigError("redis:// names one host; use redis+cluster:// or redis+sentinel://")
    segments = [s for s in parts.path.split("/") if s]
    service = None
    if kind == "sentinel":
        if not segments:
            raise ConfigError("redis+sentinel:// needs /<service name>")
        service = unquote(segments.pop(0))
    db = _db(segments)
    if kind == "cluster" and db != 0:
        raise ConfigError("a Redis Cluster has database 0 only")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    allowed = _TLS_OPTIONS | {"ssl_check_hostname"}
    allowed |= _SENTINEL_OPTIONS if kind == "sentinel" else frozenset()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}")
    if not tls and set(options) & (_TLS_OPTIONS | {"ssl_check_hostname"}):
        raise ConfigError("TLS options need rediss (rediss://, rediss+sentinel://, ...)")
    return RedisTarget(
        kind=kind,
        tls=tls,
        hosts=hosts,
        db=db,
        service=service,
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls_options=tuple(sorted((k, v) for k, v in options.items() if k in _TLS_OPTIONS)),
        check_hostname=options.get("ssl_check_hostname", "true").lower() not in ("0", "false"),
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _host(text: str, default_port: int) -> tuple[str, int]:
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:])
    elif ":" in text:
        host, _, p = text.rpartition(":")
        port = _port(p)
    if not host:
        raise ConfigError("a host is missing")
    return host, port


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError("a port is not a number between 1 and 65535")
    return int(text)


def _db(segments: list[str]) -> int:
    if not segments:
        return 0
    if len(segments) > 1 or not segments[0].isdigit():
        raise ConfigError("the path must be a database number")
    return int(segments[0])


def connect(
    target: RedisTarget,
    *,
    socket_timeout: float,
    connect_timeout: float,
    retry: Retry | None = None,
) -> tuple[Client, list[aredis.Redis]]:
    """A client for ``target`` and the Sentinel clients to close with it (nothing sent yet).

    ``retry`` replaces redis-py's default retries (the vault passes none at
    all: a retried write could be applied twice).
    """
    common: dict[str, object] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
    }
    if retry is not None:
        common["retry"] = retry
    if target.tls:
        common |= {"ssl": True, "ssl_check_hostname": target.check_hostname}
        common |= dict(target.tls_options)
    if target.kind == "cluster":
        nodes = [ClusterNode(h, p) for h, p in target.hosts]
        return RedisCluster(startup_nodes=nodes, **common), []  # type: ignore[arg-type]
    if target.kind == "sentinel":
        manager = sentinel_for(target, common)
        master = manager.master_for(
            target.service or "",
            redis_class=aredis.Redis,
            db=target.db,
            **common,  # type: ignore[arg-type]
        )
        return master, list(manager.sentinels)
    host, port = target.hosts[0]
    return aredis.Redis(host=host, port=port, db=target.db, **common), []  # type: ignore[arg-type]


def sentinel_for(target: RedisTarget, common: dict[str, object]) -> Sentinel:
    """The Sentinel manager; it speaks to the Sentinels with their own credentials."""
    sentinel_kwargs = dict(common)
    sentinel_kwargs["username"] = target.sentinel_username
    sentinel_kwargs["password"] = target.sentinel_password
    return Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
