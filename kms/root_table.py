"""The KWK table of the root service: which KWKs each gateway client has, and which are destroyed.

One row per KWK: ``(client_id, kwk_id)`` is the key; ``version``, ``state``
(``live`` or ``destroyed``), ``share`` (32 random bytes, the table's half of
the KWK, erased on destroy) and timestamps. At most one live row per
``(client_id, version)``, enforced by a partial unique index in the database
itself, so two KMS replicas creating the same version cannot both win.

URIs (the same spelling as the rest of the KMS's stores):
- ``sqlite:PATH`` / ``sqlite:///abs/path``: a file; a relative path lives
  under the KMS data dir (default ``sqlite:kms/root-kwks.db``).
- ``postgresql://...?schema=NAME``: replicas share it; ``schema`` defaults to
  ``public``; tables are created on open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from tokengate.errors import ConfigError

DEFAULT_URI = "sqlite:kms/root-kwks.db"
LIVE = "live"
DESTROYED = "destroyed"


@dataclass(frozen=True)
class KwkRow:
    """One KWK as the table holds it; ``share`` is None once destroyed."""

    version: int
    state: str
    share: bytes | None = field(repr=False)


class RootKwkTable(Protocol):
    """Persistence of the KWK rows; every failure is :class:`RootStoreUnavailable`."""

    @property
    def description(self) -> str:
        """Scheme and location without credentials, safe to log."""
        ...

    async def open(self) -> None:
        """Connect and create the table and its index if missing."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...

    async def add(
        self, client: str, version: int, kwk_id: bytes, share: bytes, *, now: int
    ) -> bool:
        """Insert a live row; False (nothing written) if ``version`` is live for ``client``."""
        ...

    async def get(self, client: str, kwk_id: bytes) -> KwkRow | None:
        """The row of ``(client, kwk_id)``, or None."""
        ...

    async def destroy(self, client: str, kwk_id: bytes, *, now: int) -> bool:
        """Mark the row destroyed and erase its share; True if it was live."""
        ...


def open_root_table(uri: str, *, data_dir: Path) -> RootKwkTable:
    """Build (not yet open) the table for ``uri``; ConfigError for a bad URI."""
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        from kms.root_table_sqlite import SqliteRootKwkTable

        return SqliteRootKwkTable(sqlite_file(uri, data_dir=data_dir))
    if scheme in ("postgresql", "postgres"):
        from kms.root_table_pg import PostgresRootKwkTable

        return PostgresRootKwkTable.from_uri(uri)
    raise ConfigError(f"kms: root table: unknown scheme '{scheme}' (use sqlite: or postgresql://)")


def sqlite_file(uri: str, *, data_dir: Path) -> Path:
    """The file of a ``sqlite:`` URI; a relative path lives under ``data_dir``."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigError("kms: root table: sqlite: names a local file, without host or options")
    if not parts.path or parts.path.endswith("/"):
        raise ConfigError("kms: root table: sqlite: needs a file name")
    path = Path(unquote(parts.path))
    return path if path.is_absolute() else data_dir / path
