"""``open_session_store``: the session store for a URI.

- ``memory:``: :class:`MemorySessionStore`; refused with more than one worker.
- ``sqlite:<path>``: :class:`SqliteSessionStore`; ``sqlite:///abs/file.db`` or
  ``sqlite:/abs/file.db`` is absolute, ``sqlite:rel/file.db`` lives under the
  data dir.
- ``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://`` (and
  their ``rediss+`` forms): :class:`RedisSessionStore`, see
  :mod:`proxy.sessions.redis_uri`.

Backends are imported only when chosen. The store is built, not connected:
call ``await store.open()``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from proxy.sessions.store import SessionStore, StoreSettings
from tokengate.errors import ConfigError

_REDIS = ("redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")


def open_session_store(
    uri: str, *, data_dir: Path, workers: int, settings: StoreSettings | None = None
) -> SessionStore:
    """The store ``uri`` names; ConfigError for an unknown scheme or an unfit worker count."""
    scheme = urlsplit(uri).scheme
    store: SessionStore
    if scheme == "memory":
        from proxy.sessions.memory_store import MemorySessionStore

        if uri.rstrip("/") not in ("memory:", "memory:/"):
            raise ConfigError("sessions.uri: memory: takes no path or options")
        store = MemorySessionStore(settings)
    elif scheme == "sqlite":
        from proxy.sessions.sqlite_store import SqliteSessionStore

        store = SqliteSessionStore(sqlite_path(uri, data_dir), settings)
    elif scheme in _REDIS:
        from proxy.sessions.redis_store import RedisSessionStore
        from proxy.sessions.redis_uri import parse_redis_uri

        store = RedisSessionStore(parse_redis_uri(uri), settings)
    else:
        raise ConfigError(
            f"sessions.uri: unknown scheme '{scheme}' (use memory:, sqlite:, redis://, "
            "rediss://, redis+sentinel:// or redis+cluster://)"
        )
    if workers > 1 and not store.supports_multiple_workers:
        raise ConfigError(
            f"sessions.uri: {scheme}: keeps sessions inside one process but {workers} workers "
            "are configured; use sqlite: (one host) or redis:// (many hosts)"
        )
    return store


def sqlite_path(uri: str, data_dir: Path, *, setting: str = "sessions.uri") -> Path:
    """The database file of a ``sqlite:`` URI (``setting`` names it in errors)."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigError(f"{setting}: sqlite: names a local file, without host or options")
    path = Path(unquote(parts.path))
    if not parts.path or parts.path.endswith("/"):
        raise ConfigError(f"{setting}: sqlite: needs a file name")
    return path if path.is_absolute() else data_dir / path
