"""``redis://`` and ``rediss://`` vault URIs, and the redis-py client each one builds.

Form: ``redis[s]://[user[:password]@]host[:port][/db]``; ``rediss`` is TLS.
Query options (``rediss`` only): ``ssl_ca_certs``, ``ssl_certfile``,
``ssl_keyfile`` (client certificate for mTLS), ``ssl_check_hostname``.
Anything else is a configuration error. Every client has socket and connect
timeouts and no silent retries (a retried write could be applied twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from vault.errors import VaultConfigError

_TLS_FILES: Final = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"})


@dataclass(frozen=True)
class RedisTarget:
    """A parsed vault Redis URI (the password never appears in ``repr``)."""

    host: str
    port: int = 6379
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_files: tuple[tuple[str, str], ...] = ()
    check_hostname: bool = True

    @property
    def description(self) -> str:
        """Scheme, host, port and database; never credentials."""
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"


def parse_redis_uri(uri: str) -> RedisTarget:
    """Parse ``uri``; VaultConfigError naming the problem (never echoing a password)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("redis", "rediss"):
        raise VaultConfigError(f"vault: url: unknown redis scheme '{parts.scheme}'")
    try:
        host, port = parts.hostname, parts.port or 6379
    except ValueError:
        raise VaultConfigError("vault: url: the redis port is not a number") from None
    if not host:
        raise VaultConfigError("vault: url: redis:// needs a host")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise VaultConfigError("vault: url: the redis path must be a database number")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _TLS_FILES - {"ssl_check_hostname"})
    if unknown:
        raise VaultConfigError(f"vault: url: unknown redis option(s) {', '.join(unknown)}")
    tls = parts.scheme == "rediss"
    if options and not tls:
        raise VaultConfigError("vault: url: TLS options need rediss://")
    return RedisTarget(
        host=host,
        port=port,
        db=int(path or 0),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls_files=tuple(sorted((k, v) for k, v in options.items() if k in _TLS_FILES)),
        check_hostname=options.get("ssl_check_hostname", "true").lower() not in ("0", "false"),
    )


def connect(target: RedisTarget, *, timeout: float) -> aredis.Redis:
    """A client for ``target`` (nothing is sent yet)."""
    tls: dict[str, str | bool] = {}
    if target.tls:
        tls = {"ssl": True, "ssl_check_hostname": target.check_hostname, **dict(target.tls_files)}
    return aredis.Redis(
        host=target.host,
        port=target.port,
        db=target.db,
        username=target.username,
        password=target.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **tls,  # type: ignore[arg-type]
    )
