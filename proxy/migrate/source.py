"""The table a migration rewrites: rows read in key order, written back by compare-and-set.

Rules every :class:`Source` keeps:
- Rows are read by keyset pagination on a unique, ordered key (SQLite's
  ``rowid``, PostgreSQL's single-column primary key or ``--key-column``):
  ``key > after ORDER BY key LIMIT n``, so a batch costs the same at any depth
  and a re-run starts cleanly.
- :meth:`Source.apply` writes one batch in ONE transaction, and each row only
  if its column still holds exactly the plaintext that was read
  (compare-and-set): a concurrent write by the application wins, the row is
  counted as a conflict and left for the next run.
- Table and column names come from the operator: each part must be a plain
  identifier (:func:`check_identifier`) and is always quoted. The ``where``
  fragment is trusted SQL from the operator, pasted verbatim into the
  ``WHERE`` clause (in parentheses); it must not come from untrusted input.
- Errors name the table and column, never a value or the DSN's credentials.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from proxy.migrate.errors import MigrateError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

Engine = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class Row:
    """One row as read: its key, the column's value and the owner column's value."""

    key: object
    value: object = field(repr=False)  # str, None, or another type (left alone)
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """Write ``new`` into the row ``key`` if the column still holds ``old``."""

    key: object
    old: str = field(repr=False)
    new: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Target:
    """What to read: table (``name`` or ``schema.name``), column, optional owner and key columns."""

    table: str
    column: str
    where: str | None = None  # trusted SQL from the operator
    owner_column: str | None = None
    key_column: str | None = None

    def __post_init__(self) -> None:
        for part in self.table.split(".", 1):
            check_identifier(part, "table")
        check_identifier(self.column, "column")
        if self.owner_column is not None:
            check_identifier(self.owner_column, "owner column")
        if self.key_column is not None:
            check_identifier(self.key_column, "key column")
        if self.where is not None and not self.where.strip():
            raise MigrateError("migrate: --where is empty")


class Source(Protocol):
    """A table column to migrate, on one database engine."""

    @property
    def engine(self) -> Engine:
        """``sqlite`` or ``postgresql`` (for the audit log)."""
        ...

    async def open(self) -> None:
        """Connect and check that the table, columns and key exist."""
        ...

    async def close(self) -> None:
        """Disconnect; idempotent."""
        ...

    async def count(self) -> int:
        """Rows the migration will look at (those matching ``where``)."""
        ...

    async def fetch(self, after: object | None, limit: int) -> list[Row]:
        """Up to ``limit`` rows with key > ``after`` (all when None), in key order."""
        ...

    async def apply(self, changes: Sequence[Change]) -> int:
        """Write ``changes`` in one transaction, each by compare-and-set; rows written."""
        ...


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain SQL identifier; MigrateError otherwise."""
    if not _IDENT.fullmatch(name):
        raise MigrateError(
            f"migrate: {what} must be a plain identifier (letters, digits, _; at most 63)"
        )
    return name


def quote(name: str) -> str:
    """``name`` (``a`` or ``a.b``) as a quoted identifier; each part is checked again."""
    return ".".join(f'"{check_identifier(part, "name")}"' for part in name.split(".", 1))
