"""RedisKeyringStore: the keyring in Redis, shared by replicas.

Keys (one hash tag per keyring, so a Redis Cluster keeps them on one slot):
``<prefix>{kms:<name>}:keyring`` (hash: version, blob),
``<prefix>{kms:<name>}:usage`` (hash: ``purpose/version`` -> count) and
``<prefix>{kms:<name>}:secrets:<purpose>`` (hash: name -> wrapped value).
Compare-and-set runs as a Lua script, so it is atomic on the server. Every
call has a timeout; a failure raises KeyringError naming the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as redis
from redis.exceptions import RedisError

from kms_client.errors import KeyringConflict, KeyringError
from kms_client.store import StoredKeyring, redact

_TIMEOUT = 5.0

# ARGV: expected version ('' = none yet), new version, blob.
_CAS_KEYRING = """
local cur = redis.call('HGET', KEYS[1], 'version')
if (cur == false and ARGV[1] == '') or cur == ARGV[1] then
  redis.call('HSET', KEYS[1], 'version', ARGV[2], 'blob', ARGV[3])
  return 1
end
return 0
"""

# ARGV: field, old value, new value.
_CAS_FIELD = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


class RedisKeyringStore:
    """Keyring, counters and wrapped secrets in Redis hashes."""

    def __init__(self, url: str, *, name: str, prefix: str) -> None:
        self._url = url
        self._base = f"{prefix}{{kms:{name}}}"
        self._client: redis.Redis | None = None

    @property
    def description(self) -> str:
        """The URL without password."""
        return redact(self._url)

    async def open(self) -> None:
        """Connect and ping."""
        self._client = redis.Redis.from_url(
            self._url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT
        )
        try:
            await self._client.ping()
        except (RedisError, OSError) as e:
            raise KeyringError(f"kms: keyring store {self.description} unreachable") from e

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def load(self) -> StoredKeyring | None:
        """HGETALL of the keyring hash."""
        raw = cast(
            dict[bytes, bytes], await self._call("load", lambda c: c.hgetall(self._key("keyring")))
        )
        if not raw:
            return None
        try:
            return StoredKeyring(int(raw[b"version"]), raw[b"blob"])
        except (KeyError, ValueError) as e:
            raise KeyringError(f"kms: keyring in {self.description} is corrupt") from e

    async def version(self) -> int | None:
        """HGET of the version field."""
        raw = await self._call("version", lambda c: c.hget(self._key("keyring"), "version"))
        return None if raw is None else int(cast(bytes, raw))

    async def save(self, blob: bytes, *, version: int, expected: int | None) -> None:
        """Atomic compare-and-set in Lua."""
        want = "" if expected is None else str(expected)
        done = await self._call(
            "save", lambda c: c.eval(_CAS_KEYRING, 1, self._key("keyring"), want, version, blob)
        )
        if done != 1:
            raise KeyringConflict("kms: keyring changed underneath (another writer)")

    async def add_usage(self, purpose: str, key_version: int, count: int) -> int:
        """HINCRBY of one counter."""
        total = await self._call(
            "usage", lambda c: c.hincrby(self._key("usage"), f"{purpose}/{key_version}", count)
        )
        return int(total)

    async def secret_get(self, purpose: str, name: str) -> bytes | None:
        """HGET of one secret."""
        return cast(
            bytes | None, await self._call("secret", lambda c: c.hget(self._secrets(purpose), name))
        )

    async def secret_put(self, purpose: str, name: str, value: bytes) -> None:
        """HSET of one secret."""
        await self._call("secret", lambda c: c.hset(self._secrets(purpose), name, value))

    async def secret_replace(self, purpose: str, name: str, old: bytes, new: bytes) -> bool:
        """Compare-and-set of one field in Lua."""
        done = await self._call(
            "secret", lambda c: c.eval(_CAS_FIELD, 1, self._secrets(purpose), name, old, new)
        )
        return bool(done == 1)

    async def secret_delete(self, purpose: str, name: str) -> bool:
        """HDEL of one secret."""
        deleted = await self._call("secret", lambda c: c.hdel(self._secrets(purpose), name))
        return int(deleted) > 0

    async def secret_scan(
        self, purpose: str, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """HSCAN from ``cursor`` (Redis' own cursor; items may come in any order)."""
        start = 0 if cursor is None else int(cursor)
        nxt, raw = cast(
            tuple[int, dict[bytes, bytes]],
            await self._call("scan", lambda c: c.hscan(self._secrets(purpose), start, None, limit)),
        )
        items = [(k.decode("utf-8"), v) for k, v in raw.items()]
        return items, (None if int(nxt) == 0 else str(nxt))

    def _key(self, kind: str) -> str:
        return f"{self._base}:{kind}"

    def _secrets(self, purpose: str) -> str:
        return f"{self._base}:secrets:{purpose}"

    async def _call[T](self, what: str, op: Callable[[redis.Redis], Awaitable[T]]) -> T:
        if self._client is None:
            raise KeyringError("kms: keyring store is not open")
        try:
            return await op(self._client)
        except (RedisError, OSError) as e:
            raise KeyringError(f"kms: keyring store {self.description} failed: {what}") from e
