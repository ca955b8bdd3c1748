"""The KWK table of the root service: which KWKs each gateway client has, and which are destroyed.

One row per KWK: ``(client_id, kwk_id)`` is the key; ``version``, ``state``
(``live`` or ``destroyed``), ``share`` (32 random bytes, the table's half of
the KWK, erased on destroy) and timestamps. At most one live row per
``(client_id, version)``, enforced by a partial unique index in the database
itself, so two KMS replicas creating the same version cannot both win.

The database is the KMS's own (the one its TEE registry and key broker use,
:mod:`tee.db`): ``sqlite:PATH`` (a relative path lives under the KMS data
dir; kms.yaml's default is ``sqlite:kms/kms.db``) or ``postgresql://...``
(replicas share it; the table lives in ``schema``, default ``tokengate_kms``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from kms.root_errors import RootStoreUnavailable
from tee.db import is_postgres, sqlite_file
from tee.errors import RegistryError

DEFAULT_SCHEMA: Final = "tokengate_kms"
LIVE: Final = "live"
DESTROYED: Final = "destroyed"


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


def open_root_table(
    uri: str, *, data_dir: Path, schema: str = DEFAULT_SCHEMA, timeout: float = 5.0
) -> RootKwkTable:
    """Build (not yet open) the table for ``uri``; RegistryError for a bad URI.

    The KMS passes its kms.yaml ``store``, ``store_schema`` and ``store_timeout``.
    """
    if is_postgres(uri):
        from kms.root_table_pg import PostgresRootKwkTable

        return PostgresRootKwkTable(uri, schema=schema, timeout=timeout)
    if not uri.startswith("sqlite:"):
        raise RegistryError("kms: store must be sqlite:PATH or postgresql://")
    from kms.root_table_sqlite import SqliteRootKwkTable

    return SqliteRootKwkTable(sqlite_file(uri, data_dir), timeout=timeout)


def check_row(row: tuple[object, ...]) -> KwkRow:
    """A database row ``(version, state, share)`` as a KwkRow; corrupt rows fail closed."""
    version, state, share = row
    if isinstance(share, memoryview):
        share = bytes(share)
    if isinstance(version, bool) or not isinstance(version, int) or state not in (LIVE, DESTROYED):
        raise RootStoreUnavailable("kms: root table holds a corrupt row")
    if share is None:
        if state != DESTROYED:
            raise RootStoreUnavailable("kms: root table holds a corrupt row")
        return KwkRow(version, DESTROYED, None)
    if not isinstance(share, bytes) or len(share) != 32 or state != LIVE:
        raise RootStoreUnavailable("kms: root table holds a corrupt row")
    return KwkRow(version, LIVE, share)
