"""The demo app's SQLite file: accounts, login sessions and the user records.

Rules:
- Every call opens its own connection in a worker thread (``asyncio.to_thread``),
  so nothing blocks the event loop and no connection is shared across threads.
- The database runs in WAL mode so readers never wait on the writer.
- Record fields are stored exactly as received: with tokengate in front they are
  tokens, and the app must not care.
- Sessions are stored by the SHA-256 of their id, so a copy of the database
  cannot be replayed as cookies.
- A record's owner always has an account: a user known only to tokengate gets
  one (with an unusable random password) when it first creates a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from demo_backend.errors import forbidden, not_found
from demo_backend.passwords import hash_password, verify_password

RECORD_FIELDS = ("name", "email", "ssn", "card_number")
SEED_ACCOUNTS = (("alice", "alice", "user"), ("bob", "bob", "user"), ("carol", "carol", "support"))
SUPPORT_ROLE = "support"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES accounts(username),
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    ssn TEXT NOT NULL,
    card_number TEXT NOT NULL,
    owner TEXT NOT NULL REFERENCES accounts(username),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
_RECORD_COLUMNS = "id, name, email, ssn, card_number, owner, created_at, updated_at"


@dataclass(frozen=True, slots=True)
class Account:
    """A logged-in user of the demo app."""

    username: str
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the users API."""

    id: int
    name: str
    email: str
    ssn: str
    card_number: str
    owner: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, str | int]:
        """The record as the API returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "ssn": self.ssn,
            "card_number": self.card_number,
            "owner": self.owner,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _provision(conn: sqlite3.Connection, username: str) -> None:
    """Give a user tokengate vouched for, but unknown here, an account to own records.

    Its password is random and never told to anyone, so it cannot log in to the
    app directly, and checking it costs the same scrypt as any other account.
    """
    if conn.execute("SELECT 1 FROM accounts WHERE username = ?", (username,)).fetchone():
        return
    conn.execute(
        "INSERT INTO accounts (username, password_hash, role) VALUES (?, ?, ?)",
        (username, hash_password(secrets.token_urlsafe(32)), "user"),
    )


def _timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")


def _record(row: sqlite3.Row) -> Record:
    return Record(
        id=int(row["id"]),
        name=str(row["name"]),
        email=str(row["email"]),
        ssn=str(row["ssn"]),
        card_number=str(row["card_number"]),
        owner=str(row["owner"]),
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
    )


class DemoStore:
    """Async access to the app's SQLite file; each method runs in a worker thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # Checked against unknown usernames so a miss costs as much as a wrong password.
        self._dummy_hash = ""

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self._path, timeout=10.0)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:  # one transaction: commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    async def open(self) -> None:
        """Create the schema, switch to WAL and seed the demo accounts on first start."""
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        with contextlib.closing(sqlite3.connect(self._path, timeout=10.0)) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
        with self._connect() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM accounts").fetchone()
            if count == 0:
                conn.executemany(
                    "INSERT INTO accounts (username, password_hash, role) VALUES (?, ?, ?)",
                    [(user, hash_password(pw), role) for user, pw, role in SEED_ACCOUNTS],
                )
        self._dummy_hash = hash_password("demo_backend: no such user")

    async def check_login(self, username: str, password: str) -> Account | None:
        """The account when the password matches; None for a wrong password or unknown user."""
        return await asyncio.to_thread(self._check_login, username, password)

    def _check_login(self, username: str, password: str) -> Account | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT username, password_hash, role FROM accounts WHERE username = ?",
                (username,),
            ).fetchone()
        if row is None:
            verify_password(password, self._dummy_hash)
            return None
        if not verify_password(password, str(row["password_hash"])):
            return None
        return Account(username=str(row["username"]), roles=(str(row["role"]),))

    async def create_session(
        self, sid_hash: str, username: str, *, now: float, expires_at: float
    ) -> None:
        """Store a new session (by the hash of its id) and drop expired ones."""
        await asyncio.to_thread(self._create_session, sid_hash, username, now, expires_at)

    def _create_session(self, sid_hash: str, username: str, now: float, expires_at: float) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO sessions (sid_hash, username, expires_at) VALUES (?, ?, ?)",
                (sid_hash, username, expires_at),
            )

    async def session_account(self, sid_hash: str, *, now: float) -> Account | None:
        """The account of a live session; None when unknown or expired."""
        return await asyncio.to_thread(self._session_account, sid_hash, now)

    def _session_account(self, sid_hash: str, now: float) -> Account | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT a.username, a.role FROM sessions s JOIN accounts a"
                " ON a.username = s.username WHERE s.sid_hash = ? AND s.expires_at > ?",
                (sid_hash, now),
            ).fetchone()
        if row is None:
            return None
        return Account(username=str(row["username"]), roles=(str(row["role"]),))

    async def delete_session(self, sid_hash: str) -> None:
        """Forget a session (logout); unknown ids are ignored."""
        await asyncio.to_thread(self._delete_session, sid_hash)

    def _delete_session(self, sid_hash: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))

    async def create_record(self, fields: Mapping[str, str], *, owner: str, now: float) -> Record:
        """Insert a record owned by ``owner``; returns it with its new id."""
        return await asyncio.to_thread(self._create_record, dict(fields), owner, now)

    def _create_record(self, fields: dict[str, str], owner: str, now: float) -> Record:
        stamp = _timestamp(now)
        with self._connect() as conn:
            _provision(conn, owner)
            cursor = conn.execute(
                "INSERT INTO users (name, email, ssn, card_number, owner, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*(fields[f] for f in RECORD_FIELDS), owner, stamp, stamp),
            )
            row = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM users WHERE id = ?",  # noqa: S608 (constant)
                (cursor.lastrowid,),
            ).fetchone()
        return _record(row)

    async def get_record(self, record_id: int) -> Record | None:
        """One record by id, or None."""
        return await asyncio.to_thread(self._get_record, record_id)

    def _get_record(self, record_id: int) -> Record | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM users WHERE id = ?",  # noqa: S608 (constant)
                (record_id,),
            ).fetchone()
        return None if row is None else _record(row)

    async def list_records(self, *, limit: int) -> list[Record]:
        """The newest ``limit`` records, newest first."""
        return await asyncio.to_thread(self._list_records, limit)

    def _list_records(self, limit: int) -> list[Record]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM users ORDER BY id DESC LIMIT ?",  # noqa: S608
                (limit,),
            ).fetchall()
        return [_record(row) for row in rows]

    async def update_record(
        self, record_id: int, fields: Mapping[str, str], *, actor: Account, now: float
    ) -> Record:
        """Replace a record's fields; only its owner or the support role may.

        Raises the app's 404 error for an unknown id and 403 for anyone else;
        the check and the write happen in one transaction.
        """
        return await asyncio.to_thread(self._update_record, record_id, dict(fields), actor, now)

    def _update_record(
        self, record_id: int, fields: dict[str, str], actor: Account, now: float
    ) -> Record:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")  # the ownership check and the write are one step
            row = conn.execute("SELECT owner FROM users WHERE id = ?", (record_id,)).fetchone()
            if row is None:
                raise not_found()
            if row["owner"] != actor.username and SUPPORT_ROLE not in actor.roles:
                raise forbidden()
            conn.execute(
                "UPDATE users SET name = ?, email = ?, ssn = ?, card_number = ?, updated_at = ?"
                " WHERE id = ?",
                (*(fields[f] for f in RECORD_FIELDS), _timestamp(now), record_id),
            )
            updated = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM users WHERE id = ?",  # noqa: S608 (constant)
                (record_id,),
            ).fetchone()
        return _record(updated)
