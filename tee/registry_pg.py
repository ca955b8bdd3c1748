"""PostgresTeeRegistry (``postgresql://``): the registry shared by several KMS replicas.

Same rows as the SQLite store (id, status, the entry's JSON) in the configured
schema. Registering an id that exists is refused by the primary key; retiring
locks the row (``SELECT ... FOR UPDATE``), so two replicas retiring together
agree on one ``retired_at``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from tee.db import PgConnection, PgRunner
from tee.registry import TeeEntry, tee_exists, unknown_tee

_DDL: Final = """
CREATE TABLE IF NOT EXISTS tg_tee_registry (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    doc TEXT NOT NULL
);
"""


class PostgresTeeRegistry:
    """The TEE registry in PostgreSQL."""

    def __init__(
        self, conninfo: str, *, schema: str = "tokengate_kms", timeout: float = 5.0
    ) -> None:
        self._db = PgRunner(conninfo, schema=schema, ddl=_DDL, timeout=timeout)

    async def open(self) -> None:
        """Create the schema and table; idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close the connections."""
        await self._db.close()

    async def register(self, entry: TeeEntry) -> TeeEntry:
        """Store a new entry; 409 ``tee_exists`` if the id was ever used."""

        async def _insert(conn: PgConnection) -> int:
            cur = await conn.execute(
                "INSERT INTO tg_tee_registry (id, status, doc) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (entry.id, entry.status, _dump(entry)),
            )
            return cur.rowcount

        if await self._db.run(_insert) != 1:
            raise tee_exists()
        return entry

    async def get(self, tee_id: str) -> TeeEntry | None:
        """The entry, None if unknown."""

        async def _get(conn: PgConnection) -> str | None:
            cur = await conn.execute("SELECT doc FROM tg_tee_registry WHERE id = %s", (tee_id,))
            row = await cur.fetchone()
            return None if row is None else str(row[0])

        doc = await self._db.run(_get)
        return None if doc is None else TeeEntry.from_json(json.loads(doc))

    async def entries(self) -> list[TeeEntry]:
        """Every entry, by id."""

        async def _all(conn: PgConnection) -> list[str]:
            cur = await conn.execute("SELECT doc FROM tg_tee_registry ORDER BY id")
            return [str(r[0]) for r in await cur.fetchall()]

        return [TeeEntry.from_json(json.loads(d)) for d in await self._db.run(_all)]

    async def retire(self, tee_id: str, *, now: datetime) -> TeeEntry:
        """Retire the entry (unchanged when already retired); 404 ``unknown_tee``."""

        async def _retire(conn: PgConnection) -> TeeEntry | None:
            cur = await conn.execute(
                "SELECT doc FROM tg_tee_registry WHERE id = %s FOR UPDATE", (tee_id,)
            )
            row = await cur.fetchone()
            if row is None:
                return None
            entry = TeeEntry.from_json(json.loads(str(row[0])))
            if entry.active:
                entry = entry.retired(now)
                await conn.execute(
                    "UPDATE tg_tee_registry SET status = %s, doc = %s WHERE id = %s",
                    (entry.status, _dump(entry), tee_id),
                )
            return entry

        found = await self._db.run(_retire)
        if found is None:
            raise unknown_tee()
        return found


def _dump(entry: TeeEntry) -> str:
    return json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":"))
