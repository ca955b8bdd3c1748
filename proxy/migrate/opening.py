"""``open_source``: the :class:`~proxy.migrate.source.Source` a DSN names, connected.

- ``sqlite:///abs/path.db`` or ``sqlite:relative/path.db`` (relative to the
  current directory): :class:`~proxy.migrate.sqlite_source.SqliteSource`; the
  file must exist.
- ``postgresql://...`` / ``postgres://...`` (any libpq URL):
  :class:`~proxy.migrate.postgres_source.PostgresSource`.

The DSN may hold a password: it never appears in an error or the audit log.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from proxy.migrate.errors import MigrateError
from proxy.migrate.source import Source, Target


def build_source(dsn: str, target: Target) -> Source:
    """The source for ``dsn`` (not yet open); MigrateError for another scheme."""
    scheme = dsn.split(":", 1)[0].lower() if ":" in dsn else ""
    if scheme == "sqlite":
        from proxy.migrate.sqlite_source import SqliteSource

        return SqliteSource(sqlite_file(dsn), target)
    if scheme in ("postgresql", "postgres"):
        from proxy.migrate.postgres_source import PostgresSource

        return PostgresSource(dsn, target)
    raise MigrateError("migrate: --dsn must start with sqlite: or postgresql://")


async def open_source(dsn: str, target: Target) -> Source:
    """Build and open the source; closed again if opening fails."""
    source = build_source(dsn, target)
    try:
        await source.open()
    except BaseException:
        await source.close()
        raise
    return source


def sqlite_file(dsn: str) -> Path:
    """The file of a ``sqlite:`` DSN (``sqlite:///abs``, ``sqlite:/abs`` or ``sqlite:rel``)."""
    parts = urlsplit(dsn)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or not parts.path:
        raise MigrateError("migrate: a sqlite: DSN names a local file, without host or options")
    path = unquote(parts.path)
    return Path("/" + path.lstrip("/")) if path.startswith("/") else Path(path)
