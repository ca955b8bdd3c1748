"""Where the wrapped keyring lives: one Protocol, backends chosen by URI.

A store holds, for one keyring name: the wrapped keyring with its version
(saved by compare-and-set, so two replicas rotating at once cannot fork it),
encryption counters per key version, and the wrapped secrets records of
:mod:`kms_client.secrets`. It never sees key material in the clear.

URIs: ``file:/path/keyring.json`` (default, one host; atomic replace, fsync,
0600), ``redis://`` / ``rediss://host:port/db?prefix=tokengate:`` and
``postgresql://...?schema=NAME`` for replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tokengate.errors import ConfigError


@dataclass(frozen=True)
class StoredKeyring:
    """The wrapped keyring as the store holds it."""

    version: int
    blob: bytes = field(repr=False)


class KeyringStore(Protocol):
    """Persistence of one named keyring and its wrapped secrets."""

    @property
    def description(self) -> str:
        """Scheme and location without credentials, safe to log."""
        ...

    async def open(self) -> None:
        """Connect and create missing tables; KeyringError naming the cause on failure."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...

    async def load(self) -> StoredKeyring | None:
        """The current wrapped keyring, or None if none was ever saved."""
        ...

    async def version(self) -> int | None:
        """The current keyring version only (a cheap poll for replicas)."""
        ...

    async def save(self, blob: bytes, *, version: int, expected: int | None) -> None:
        """Store ``blob`` as ``version`` iff the current version is ``expected``.

        Raises KeyringConflict when another writer got there first.
        """
        ...

    async def add_usage(self, purpose: str, key_version: int, count: int) -> int:
        """Add ``count`` encryptions to a key version; return the new total."""
        ...

    async def secret_get(self, purpose: str, name: str) -> bytes | None:
        """One wrapped secret, or None."""
        ...

    async def secret_put(self, purpose: str, name: str, value: bytes) -> None:
        """Create or overwrite one wrapped secret."""
        ...

    async def secret_replace(self, purpose: str, name: str, old: bytes, new: bytes) -> bool:
        """Overwrite a secret only if it still holds ``old``; False otherwise."""
        ...

    async def secret_delete(self, purpose: str, name: str) -> bool:
        """Delete one secret; False if it did not exist."""
        ...

    async def secret_scan(
        self, purpose: str, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """Up to ``limit`` (name, value) pairs from ``cursor``, and the next cursor (None: done)."""
        ...


def default_store_uri(data_dir: Path) -> str:
    """The embedded default: a keyring file under the data dir."""
    return f"file:{(data_dir / 'kms' / 'keyring.json').absolute()}"


def open_store(uri: str, *, name: str) -> KeyringStore:
    """Build (not yet connect) the store for ``uri``; ConfigError for an unknown scheme."""
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        from kms_client.file_store import FileKeyringStore

        return FileKeyringStore(file_path(uri), name=name)
    if scheme in ("redis", "rediss"):
        from kms_client.redis_store import RedisKeyringStore

        url, params = split_params(uri, {"prefix"})
        return RedisKeyringStore(url, name=name, prefix=params.get("prefix", "tokengate:"))
    if scheme in ("postgresql", "postgres"):
        from kms_client.postgres_store import PostgresKeyringStore

        url, params = split_params(uri, {"schema"})
        return PostgresKeyringStore(url, name=name, schema=params.get("schema", "public"))
    raise ConfigError(
        f"keys.store: unknown scheme '{scheme}' (use file:, redis://, rediss:// or postgresql://)"
    )


def file_path(uri: str) -> Path:
    """The path of a ``file:`` URI (``file:/abs``, ``file:///abs`` or ``file:relative``)."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError("keys.store: file: URIs name a local path, not a host")
    if not parts.path:
        raise ConfigError("keys.store: file: URI has no path")
    return Path(parts.path)


def split_params(uri: str, ours: set[str]) -> tuple[str, dict[str, str]]:
    """Remove tokengate's own query parameters from a URI the client library will parse."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    mine = {k: v for k, v in query if k in ours}
    rest = [(k, v) for k, v in query if k not in ours]
    return urlunsplit(parts._replace(query=urlencode(rest))), mine


def redact(uri: str) -> str:
    """``uri`` without its password, for logs and error messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))
