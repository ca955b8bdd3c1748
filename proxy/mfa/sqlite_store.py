"""SqliteMfaStore: MFA records in one SQLite file, shared by the workers of one host.

One connection per process, used only from a single worker thread, so the
event loop never blocks on the file. WAL mode and a busy timeout let several
worker processes share the file; every read-modify-write runs inside ``BEGIN
IMMEDIATE``, so it holds the write lock from its first read and two workers
can never both consume one code or move one counter. The file is created
owner-only (0600). Times are stored as Unix seconds.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from proxy.mfa import sqlite_rows as rows
from proxy.mfa.errors import MfaStoreUnavailable
from proxy.mfa.records import Ceremony, RecoveryCodeSet, TotpEnrolment, WebAuthnCredential


class SqliteMfaStore:
    """The embedded MFA store (``sqlite:///path``)."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def description(self) -> str:
        """``sqlite:///<path>``."""
        return f"sqlite:///{self.path}"

    async def open(self) -> None:
        """Create the file (0600) and the schema; switch to WAL."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mfa-sqlite")
        await self._run(self._connect)

    async def close(self) -> None:
        """Close the connection and stop the thread."""
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)

    # ---- TOTP ----

    async def put_pending_totp(self, enrolment: TotpEnrolment) -> None:
        """INSERT OR REPLACE the pending slot."""
        e, p = enrolment, enrolment.params
        row = (e.subject, "pending", e.ciphertext, p.algorithm.value, p.digits, p.period)
        await self._write(
            "INSERT OR REPLACE INTO mfa_totp (subject, slot, ciphertext, algorithm, digits,"
            " period, created_at, confirmed_at, last_step)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (*row, rows.ts(e.created_at)),
        )

    async def get_totp(self, subject: str, *, pending: bool) -> TotpEnrolment | None:
        """SELECT one slot."""
        found = await self._read(
            "SELECT subject, ciphertext, algorithm, digits, period, created_at, confirmed_at,"
            " last_step FROM mfa_totp WHERE subject = ? AND slot = ?",
            (subject, "pending" if pending else "active"),
        )
        return rows.totp(found[0]) if found else None

    async def activate_totp(self, subject: str, *, step: int, at: datetime) -> bool:
        """Delete the active slot and move the pending one into it, in one transaction."""

        def work(conn: sqlite3.Connection) -> bool:
            pending = conn.execute(
                "SELECT 1 FROM mfa_totp WHERE subject = ? AND slot = 'pending'", (subject,)
            ).fetchone()
            if pending is None:
                return False
            conn.execute("DELETE FROM mfa_totp WHERE subject = ? AND slot = 'active'", (subject,))
            conn.execute(
                "UPDATE mfa_totp SET slot = 'active', confirmed_at = ?, last_step = ?"
                " WHERE subject = ? AND slot = 'pending'",
                (rows.ts(at), step, subject),
            )
            return True

        return await self._transaction(work)

    async def advance_totp_step(self, subject: str, step: int) -> bool:
        """UPDATE ... WHERE last_step < step (one statement: atomic)."""
        return (
            await self._write(
                "UPDATE mfa_totp SET last_step = ? WHERE subject = ? AND slot = 'active'"
                " AND (last_step IS NULL OR last_step < ?)",
                (step, subject, step),
            )
            == 1
        )

    async def delete_totp(self, subject: str) -> bool:
        """DELETE both slots."""
        return await self._write("DELETE FROM mfa_totp WHERE subject = ?", (subject,)) > 0

    # ---- recovery codes ----

    async def replace_recovery_codes(
        self, subject: str, *, key_version: int, digests: Sequence[bytes], at: datetime
    ) -> None:
        """Delete the old set and insert the new one in one transaction."""

        def work(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM mfa_recovery_code WHERE subject = ?", (subject,))
            conn.execute(
                "INSERT OR REPLACE INTO mfa_recovery_set (subject, key_version, created_at)"
                " VALUES (?, ?, ?)",
                (subject, key_version, rows.ts(at)),
            )
            conn.executemany(
                "INSERT INTO mfa_recovery_code (subject, digest) VALUES (?, ?)",
                [(subject, d) for d in digests],
            )
            return True

        await self._transaction(work)

    async def recovery_codes(self, subject: str) -> RecoveryCodeSet | None:
        """The set header and its unused digests, read in one transaction."""

        def work(conn: sqlite3.Connection) -> RecoveryCodeSet | None:
            head = conn.execute(
                "SELECT key_version, created_at FROM mfa_recovery_set WHERE subject = ?",
                (subject,),
            ).fetchone()
            if head is None:
                return None
            found = conn.execute(
                "SELECT digest FROM mfa_recovery_code WHERE subject = ?", (subject,)
            ).fetchall()
            digests = tuple(bytes(r[0]) for r in found)
            return RecoveryCodeSet(subject, int(head[0]), digests, rows.dt(head[1]))

        return await self._transaction(work)

    async def consume_recovery_code(self, subject: str, digest: bytes) -> bool:
        """DELETE exactly that digest (one statement: atomic)."""
        return (
            await self._write(
                "DELETE FROM mfa_recovery_code WHERE subject = ? AND digest = ?", (subject, digest)
            )
            == 1
        )

    async def delete_recovery_codes(self, subject: str) -> bool:
        """DELETE the set and its codes."""

        def work(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM mfa_recovery_code WHERE subject = ?", (subject,))
            return (
                conn.execute("DELETE FROM mfa_recovery_set WHERE subject = ?", (subject,)).rowcount
                > 0
            )

        return await self._transaction(work)

    # ---- WebAuthn ----

    async def add_webauthn_credential(self, credential: WebAuthnCredential) -> bool:
        """INSERT OR IGNORE keyed by the credential id."""
        c = credential
        return (
            await self._write(
                "INSERT OR IGNORE INTO mfa_webauthn (subject, credential_id, public_key,"
                " sign_count, user_handle, aaguid, created_at, last_used_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c.subject,
                    c.credential_id,
                    c.public_key,
                    c.sign_count,
                    c.user_handle,
                    c.aaguid,
                    rows.ts(c.created_at),
                    None if c.last_used_at is None else rows.ts(c.last_used_at),
                ),
            )
            == 1
        )

    async def webauthn_credentials(self, subject: str) -> list[WebAuthnCredential]:
        """SELECT the subject's credentials, oldest first."""
        found = await self._read(
            "SELECT subject, credential_id, public_key, sign_count, user_handle, aaguid,"
            " created_at, last_used_at FROM mfa_webauthn WHERE subject = ? ORDER BY created_at",
            (subject,),
        )
        return [rows.credential(r) for r in found]

    async def update_sign_count(
        self, subject: str, credential_id: bytes, *, expected: int, new: int, at: datetime
    ) -> bool:
        """UPDATE ... WHERE sign_count = expected (one statement: atomic)."""
        return (
            await self._write(
                "UPDATE mfa_webauthn SET sign_count = ?, last_used_at = ?"
                " WHERE subject = ? AND credential_id = ? AND sign_count = ?",
                (new, rows.ts(at), subject, credential_id, expected),
            )
            == 1
        )

    async def delete_webauthn_credential(self, subject: str, credential_id: bytes) -> bool:
        """DELETE one credential of the subject."""
        return (
            await self._write(
                "DELETE FROM mfa_webauthn WHERE subject = ? AND credential_id = ?",
                (subject, credential_id),
            )
            == 1
        )

    # ---- challenges ----

    async def put_challenge(
        self, subject: str, ceremony: Ceremony, challenge: bytes, *, expires_at: datetime
    ) -> None:
        """INSERT OR REPLACE: one row per subject and ceremony, so the table stays bounded."""
        await self._write(
            "INSERT OR REPLACE INTO mfa_challenge (subject, ceremony, challenge, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (subject, ceremony.value, challenge, rows.ts(expires_at)),
        )

    async def take_challenge(
        self, subject: str, ceremony: Ceremony, *, now: datetime
    ) -> bytes | None:
        """SELECT and DELETE in one transaction; expired challenges are deleted, not returned."""

        def work(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT challenge, expires_at FROM mfa_challenge"
                " WHERE subject = ? AND ceremony = ?",
                (subject, ceremony.value),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "DELETE FROM mfa_challenge WHERE subject = ? AND ceremony = ?",
                (subject, ceremony.value),
            )
            return bytes(row[0]) if float(row[1]) > rows.ts(now) else None

        return await self._transaction(work)

    # ---- plumbing ----

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(rows.SCHEMA)
        except sqlite3.Error:
            conn.close()
            raise
        self._conn = conn

    async def _read(self, sql: str, args: tuple[object, ...]) -> list[rows.Row]:
        return await self._run(lambda: list(self._connection().execute(sql, args).fetchall()))

    async def _write(self, sql: str, args: tuple[object, ...]) -> int:
        return await self._run(lambda: self._connection().execute(sql, args).rowcount)

    async def _transaction[T](self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(run)

    async def _run[T](self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise MfaStoreUnavailable("mfa: sqlite store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as e:
            raise MfaStoreUnavailable(f"mfa: sqlite store {self.path} failed: {e}") from e

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("connection closed")
        return self._conn
