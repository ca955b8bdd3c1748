"""SqliteTeeRegistry (``sqlite:PATH``): the embedded registry, one file shared by local processes.

Each entry is one row: its id, status and the entry's JSON. Registering an id
that exists (active or retired) is refused; retiring is one UPDATE under the
file's write lock.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Final

from tee.db import SqliteRunner
from tee.registry import TeeEntry, tee_exists, unknown_tee

_DDL: Final = """
CREATE TABLE IF NOT EXISTS tg_tee_registry (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    doc TEXT NOT NULL
) WITHOUT ROWID;
"""


class SqliteTeeRegistry:
    """The TEE registry in a SQLite file."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self._db = SqliteRunner(path, ddl=_DDL, timeout=timeout)

    async def open(self) -> None:
        """Create the file and table; idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close the connection; idempotent."""
        await self._db.close()

    async def register(self, entry: TeeEntry) -> TeeEntry:
        """Store a new entry; 409 ``tee_exists`` if the id was ever used."""

        def _insert(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO tg_tee_registry (id, status, doc) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (entry.id, entry.status, _dump(entry)),
            )
            return cur.rowcount == 1

        if not await self._db.write(_insert):
            raise tee_exists()
        return entry

    async def get(self, tee_id: str) -> TeeEntry | None:
        """The entry, None if unknown."""

        def _get(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT doc FROM tg_tee_registry WHERE id = ?", (tee_id,)).fetchone()
            return None if row is None else str(row[0])

        doc = await self._db.read(_get)
        return None if doc is None else TeeEntry.from_json(json.loads(doc))

    async def entries(self) -> list[TeeEntry]:
        """Every entry, by id."""

        def _all(conn: sqlite3.Connection) -> list[str]:
            return [str(r[0]) for r in conn.execute("SELECT doc FROM tg_tee_registry ORDER BY id")]

        return [TeeEntry.from_json(json.loads(d)) for d in await self._db.read(_all)]

    async def retire(self, tee_id: str, *, now: datetime) -> TeeEntry:
        """Retire the entry (unchanged when already retired); 404 ``unknown_tee``."""

        def _retire(conn: sqlite3.Connection) -> TeeEntry | None:
            row = conn.execute("SELECT doc FROM tg_tee_registry WHERE id = ?", (tee_id,)).fetchone()
            if row is None:
                return None
            entry = TeeEntry.from_json(json.loads(str(row[0])))
            if entry.active:
                entry = entry.retired(now)
                conn.execute(
                    "UPDATE tg_tee_registry SET status = ?, doc = ? WHERE id = ?",
                    (entry.status, _dump(entry), tee_id),
                )
            return entry

        found = await self._db.write(_retire)
        if found is None:
            raise unknown_tee()
        return found


def _dump(entry: TeeEntry) -> str:
    return json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":"))
