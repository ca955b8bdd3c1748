"""Redis session-store URIs: every form parsed, every mistake refused, no password echoed."""

from __future__ import annotations

import pytest

from proxy.sessions.redis_uri import RedisTarget, parse_redis_uri
from tokengate.errors import ConfigError


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("redis://127.0.0.1:6379/0", RedisTarget("single", False, (("127.0.0.1", 6379),))),
        ("redis://cache", RedisTarget("single", False, (("cache", 6379),))),
        (
            "rediss://user:p%40ss@cache.internal:6380/2?ssl_ca_certs=/etc/ca.pem",
            RedisTarget(
                "single", True, (("cache.internal", 6380),), db=2, username="user",
                password="p@ss", tls_options=(("ssl_ca_certs", "/etc/ca.pem"),),
            ),
        ),
        ("redis://[::1]:7000", RedisTarget("single", False, (("::1", 7000),))),
        (
            "redis+sentinel://s1,s2:26380/mymaster/3",
            RedisTarget(
                "sentinel", False, (("s1", 26379), ("s2", 26380)), db=3, service="mymaster"
            ),
        ),
        (
            "rediss+sentinel://:pw@s1/mymaster?sentinel_password=spw&ssl_check_hostname=false",
            RedisTarget(
                "sentinel", True, (("s1", 26379),), service="mymaster", password="pw",
                check_hostname=False, sentinel_password="spw",
            ),
        ),
        (
            "redis+cluster://n1:7000,n2:7001,n3",
            RedisTarget("cluster", False, (("n1", 7000), ("n2", 7001), ("n3", 6379))),
        ),
    ],
)  # fmt: skip
def test_forms(uri: str, expected: RedisTarget) -> None:
    assert parse_redis_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("redis+foo://h", "unknown redis scheme"),
        ("redis://a,b", "one host"),
        ("redis+sentinel://s1", "service"),
        ("redis+cluster://n1/2", "database 0"),
        ("redis://h/x", "database number"),
        ("redis://h/0/1", "database number"),
        ("redis://h:99999", "port"),
        ("redis://h:abc", "port"),
        ("redis://:6379", "host"),
        ("redis://h?ssl_ca_certs=/ca", "rediss"),
        ("rediss://h?socket_timeout=0", "unknown option"),
        ("redis://h?sentinel_password=x", "unknown option"),
    ],
)
def test_mistakes(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_redis_uri(uri)


def test_description_and_repr_hide_credentials() -> None:
    target = parse_redis_uri("rediss+sentinel://u:hunter2@s1,s2/mm?sentinel_password=sekrit")
    assert target.description == "rediss+sentinel://s1:26379,s2:26379/mm"
    assert "hunter2" not in repr(target)
    assert "sekrit" not in repr(target)
