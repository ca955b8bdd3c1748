"""``open_store``: the vault store a :class:`~vault.config.VaultConfig` names, checked at start-up.

Schemes (backends are imported only when chosen):
- ``sqlite:<path>``: :class:`~vault.sqlite_store.SqliteVault`; a relative path
  lives under the data dir, ``sqlite:///abs`` / ``sqlite:/abs`` is absolute.
- ``redis://``, ``rediss://`` (one server), ``redis[s]+sentinel://`` (the
  master of a Sentinel service), ``redis[s]+cluster://`` (a Redis Cluster):
  :class:`~vault.redis_store.RedisVault`.
- ``postgresql://``, ``postgres://``: :class:`~vault.postgres_store.PostgresVault`
  (``schema=`` picks the schema; the rest of the DSN goes to libpq).
- ``s3://bucket?region=...``: :class:`~vault.s3_store.S3Vault`.

Rules: a store that says it would not survive its own restart is refused
with its reason unless ``accept_volatile`` is set (then it is logged once).
Without ``accept_volatile`` a Redis store is built with ``require_durable``:
it keeps re-checking its master and fails writes closed while it is not
durable (a failover may promote a replica configured differently).
An unreachable store at start-up is :class:`~vault.errors.VaultUnavailable`,
never a fallback. :func:`insecure_reasons` lists what ``mode: production``
must refuse; it does no IO.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from vault.config import VaultConfig
from vault.errors import VaultConfigError
from vault.store import VaultStore

log = logging.getLogger(__name__)

_SCHEMES = "sqlite:, redis[s]://, redis[s]+sentinel://, redis[s]+cluster://, postgresql:// or s3://"
REDIS_SCHEMES = frozenset(
    {"redis", "rediss", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"}
)


class OpenableStore(VaultStore, Protocol):
    """A store that connects (and creates its schema) in ``open``."""

    async def open(self) -> None:
        """Connect; create the schema if absent."""
        ...


def build_store(
    config: VaultConfig, *, data_dir: Path, now: Callable[[], float] = time.time
) -> OpenableStore:
    """The store ``config.url`` names, not yet connected; VaultConfigError for a bad URL."""
    scheme = urlsplit(config.url).scheme
    if scheme == "sqlite":
        from vault.sqlite_store import SqliteVault

        return SqliteVault(sqlite_path(config.url, data_dir), timeout=config.timeout, now=now)
    if scheme in REDIS_SCHEMES:
        from vault.redis_store import DEFAULT_PREFIX, RedisVault
        from vault.redis_uri import parse_redis_uri

        return RedisVault(
            parse_redis_uri(config.url),
            prefix=DEFAULT_PREFIX if config.prefix is None else config.prefix,
            timeout=config.timeout,
            replica_wait_timeout=config.replica_wait_timeout,
            require_durable=not config.accept_volatile,  # re-checked after start-up too
            now=now,
        )
    if scheme in ("postgresql", "postgres"):
        from vault.postgres_store import PostgresVault, split_schema

        url, schema = split_schema(config.url)
        return PostgresVault(url, schema=schema, timeout=config.timeout, now=now)
    if scheme == "s3":
        from vault.s3_store import DEFAULT_PREFIX as S3_PREFIX
        from vault.s3_store import S3Vault
        from vault.s3_uri import parse_s3_uri

        return S3Vault(
            parse_s3_uri(config.url),
            prefix=S3_PREFIX if config.prefix is None else config.prefix,
            timeout=config.timeout,
            max_concurrency=config.max_concurrency,
            now=now,
        )
    raise VaultConfigError(f"vault: url: unknown scheme '{scheme}' (use {_SCHEMES})")


async def open_store(
    config: VaultConfig, *, data_dir: Path, now: Callable[[], float] = time.time
) -> VaultStore:
    """Build, connect and check the store; VaultConfigError if it is volatile and not accepted."""
    store = build_store(config, data_dir=data_dir, now=now)
    try:
        await store.open()
        report = await store.durability()
    except BaseException:
        await store.close()
        raise
    if not report.durable:
        if not config.accept_volatile:
            await store.close()
            raise VaultConfigError(
                f"vault: {report.detail}: committed records would not survive a restart of "
                "the store; make it durable or set vault.accept_volatile: true"
            )
        log.warning("vault: volatile store accepted by configuration (%s)", report.detail)
    return store


def sqlite_path(url: str, data_dir: Path) -> Path:
    """The database file of a ``sqlite:`` URL; relative paths live under ``data_dir``."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise VaultConfigError("vault: url: sqlite: names a local file, without host or options")
    if not parts.path or parts.path.endswith("/"):
        raise VaultConfigError("vault: url: sqlite: needs a file name")
    path = Path(unquote(parts.path))
    return path if path.is_absolute() else data_dir / path


def insecure_reasons(config: VaultConfig) -> list[str]:
    """Why this vault config is unfit for ``mode: production`` (empty when fit); no IO."""
    reasons: list[str] = []
    if config.accept_volatile:
        reasons.append("vault.accept_volatile: records may be lost when the store restarts")
    parts = urlsplit(config.url)
    try:
        if parts.scheme in REDIS_SCHEMES:
            reasons += _redis_reasons(config.url)
        elif parts.scheme in ("postgresql", "postgres"):
            reasons += _postgres_reasons(config.url)
        elif parts.scheme == "s3":
            reasons += _s3_reasons(config.url)
        else:
            build_store(config, data_dir=Path("."))  # refuses unknown schemes and bad paths
    except VaultConfigError as e:
        reasons.append(str(e))
    return reasons


def _redis_reasons(url: str) -> list[str]:
    from vault.redis_uri import parse_redis_uri

    target = parse_redis_uri(url)
    if all(is_loopback(host) for host, _ in target.hosts):
        return []
    if not target.tls:
        return ["vault.url: plain-text Redis to another host; use a rediss scheme"]
    if not target.check_hostname:
        return ["vault.url: rediss without ssl_check_hostname accepts any server"]
    return []


def _postgres_reasons(url: str) -> list[str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", [""])[0]
    if not host or host.startswith("/") or is_loopback(host):
        return []
    if query.get("sslmode", [""])[0] != "verify-full":
        return ["vault.url: remote PostgreSQL without sslmode=verify-full"]
    return []


def _s3_reasons(url: str) -> list[str]:
    from vault.s3_uri import endpoint_host, is_plain_http, parse_s3_uri

    target = parse_s3_uri(url)
    if is_plain_http(target) and not is_loopback(endpoint_host(target)):
        return ["vault.url: plain HTTP to the S3 endpoint; use https"]
    return []


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine only (the sidecar case)."""
    if not host:
        return False
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
