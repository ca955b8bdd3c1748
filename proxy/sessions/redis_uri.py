"""Redis session-store URIs: the shared forms of :mod:`tokengate.redis_uri`.

Forms (``rediss`` variants use TLS; ``user:password@`` is optional everywhere):

- ``redis://host:6379/0``: one server.
- ``redis+sentinel://host1:26379,host2:26379/<service>[/<db>]``: the master of
  ``service`` as the Sentinels name it; replicas exist by construction, so
  revokes wait for one of them by default.
- ``redis+cluster://host1:6379,host2:6379``: a Redis Cluster (database 0).

Parsing and client construction live in :mod:`tokengate.redis_uri` (the vault
uses the same forms); this module names errors after ``sessions.uri``.
"""

from __future__ import annotations

from tokengate import redis_uri as shared
from tokengate.errors import ConfigError
from tokengate.redis_uri import Client, Kind, RedisTarget, connect, sentinel_for

__all__ = ["Client", "Kind", "RedisTarget", "connect", "parse_redis_uri", "sentinel_for"]


def parse_redis_uri(uri: str) -> RedisTarget:
    """Parse ``uri``; ConfigError prefixed ``sessions.uri:`` (never echoing a password)."""
    try:
        return shared.parse_redis_uri(uri)
    except ConfigError as e:
        raise ConfigError(f"sessions.uri: {e}") from None
