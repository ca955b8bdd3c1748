"""The shared Redis URI module: messages without a caller prefix or secret, one client per form.

The forms themselves are tested through their users (tests/proxy/sessions/
test_redis_uri.py, tests/vault/test_redis_store.py); here is what both rely on.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.backoff import NoBackoff

from tokengate.errors import ConfigError
from tokengate.redis_uri import Client, connect, parse_redis_uri


@pytest.mark.parametrize(
    "uri",
    [
        "memcached://u:hunter2@h",
        "redis://u:hunter2@a,b",
        "redis+sentinel://u:hunter2@s1",
        "redis+cluster://u:hunter2@n1/1",
        "redis://u:hunter2@h:0",
        "redis://u:hunter2@/0",
        "redis://u:hunter2@h?ssl_ca_certs=/ca",
        "rediss://u:hunter2@h?password=hunter2",
        "redis://u:hunter2@[::1",
    ],
    ids=["scheme", "hosts", "service", "cluster-db", "port", "host", "tls", "option", "ipv6"],
)
def test_errors_name_the_problem_without_prefix_or_secret(uri: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redis_uri(uri)
    message = str(caught.value)
    assert "hunter2" not in message
    assert not message.startswith(("sessions.uri", "vault"))


def test_description_names_a_non_zero_database() -> None:
    assert parse_redis_uri("redis://h/0").description == "redis://h:6379"
    assert parse_redis_uri("redis://u:pw@h/4").description == "redis://h:6379/4"


async def test_connect_builds_one_client_per_form_with_the_given_retry() -> None:
    retry = Retry(NoBackoff(), 0)
    single, extra = connect(
        parse_redis_uri("redis://127.0.0.1:6390/2"),
        socket_timeout=1,
        connect_timeout=1,
        retry=retry,
    )
    assert isinstance(single, aredis.Redis)
    assert extra == []
    policy = single.get_retry()
    assert policy is not None
    assert policy.get_retries() == 0
    sentinel, sentinels = connect(
        parse_redis_uri("redis+sentinel://127.0.0.1:26390,127.0.0.1:26391/svc/1"),
        socket_timeout=1,
        connect_timeout=1,
    )
    assert isinstance(sentinel, aredis.Redis)
    assert isinstance(sentinel.connection_pool, SentinelConnectionPool)
    assert len(sentinels) == 2
    cluster, extra = connect(
        parse_redis_uri("redis+cluster://127.0.0.1:7390"), socket_timeout=1, connect_timeout=1
    )
    assert isinstance(cluster, RedisCluster)
    assert extra == []
    clients: list[Client] = [single, sentinel, *sentinels, cluster]
    for client in clients:
        await client.aclose()
