"""Vault Redis URIs: the forms of :mod:`tokengate.redis_uri`, errors as VaultConfigError.

Forms (``rediss`` variants use TLS; ``user:password@`` is optional):
``redis://host:port/db`` (one server), ``redis+sentinel://s1:26379,s2/<service>[/<db>]``
(the master of ``service``) and ``redis+cluster://n1:6379,n2`` (a Redis Cluster).
Query options: ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile`` (client
certificate for mTLS), ``ssl_check_hostname`` and, for Sentinel,
``sentinel_username`` / ``sentinel_password``. Anything else is a configuration
error. Every client has socket and connect timeouts and no silent retries (a
retried write could be applied twice).
"""

from __future__ import annotations

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tokengate import redis_uri as shared
from tokengate.errors import ConfigError
from tokengate.redis_uri import SCHEMES, Client, RedisTarget
from vault.errors import VaultConfigError

__all__ = ["SCHEMES", "Client", "RedisTarget", "connect", "parse_redis_uri"]


def parse_redis_uri(uri: str) -> RedisTarget:
    """Parse ``uri``; VaultConfigError prefixed ``vault: url:`` (never echoing a password)."""
    try:
        return shared.parse_redis_uri(uri)
    except ConfigError as e:
        raise VaultConfigError(f"vault: url: {e}") from None


def connect(target: RedisTarget, *, timeout: float) -> tuple[Client, list[aredis.Redis]]:
    """A client for ``target`` without retries, and the Sentinel clients to close with it."""
    return shared.connect(
        target, socket_timeout=timeout, connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
