"""The broker's SQL, written once with ``?`` placeholders (PostgreSQL gets ``%s``).

Both dialects take the same statements; only the DDL differs in types
(``BLOB``/``BYTEA``, ``INTEGER``/``BIGINT``). Booleans are stored as 0/1
integers in both so one statement fits both engines.
"""

from __future__ import annotations

from typing import Final, LiteralString


def pg(statement: LiteralString) -> LiteralString:
    """``statement`` with PostgreSQL placeholders."""
    return statement.replace("?", "%s")


def ddl(*, blob: LiteralString, bigint: LiteralString, suffix: LiteralString) -> LiteralString:
    """The broker's tables for one dialect."""
    return f"""
CREATE TABLE IF NOT EXISTS tg_kms_nonces (
    nonce {blob} PRIMARY KEY,
    tee_id TEXT NOT NULL,
    expires_at {bigint} NOT NULL
){suffix};
CREATE INDEX IF NOT EXISTS tg_kms_nonces_tee ON tg_kms_nonces (tee_id, expires_at);
CREATE TABLE IF NOT EXISTS tg_kms_sessions (
    digest {blob} PRIMARY KEY,
    tee_id TEXT NOT NULL,
    public_key {blob} NOT NULL,
    expires_at {bigint} NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
){suffix};
CREATE INDEX IF NOT EXISTS tg_kms_sessions_key ON tg_kms_sessions (tee_id, public_key);
CREATE TABLE IF NOT EXISTS tg_kms_grants (
    grant_id TEXT PRIMARY KEY,
    tee_id TEXT NOT NULL,
    worker_key {blob} NOT NULL,
    job TEXT NOT NULL,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires_at {bigint} NOT NULL,
    sealed_key {blob} NOT NULL,
    released INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
){suffix};
CREATE INDEX IF NOT EXISTS tg_kms_grants_key ON tg_kms_grants (tee_id, worker_key);
"""


SQLITE_DDL: Final = ddl(blob="BLOB", bigint="INTEGER", suffix=" WITHOUT ROWID")
PG_DDL: Final = ddl(blob="BYTEA", bigint="BIGINT", suffix="")

COUNT_NONCES: Final = "SELECT count(*) FROM tg_kms_nonces WHERE tee_id = ? AND expires_at > ?"
ADD_NONCE: Final = "INSERT INTO tg_kms_nonces (nonce, tee_id, expires_at) VALUES (?, ?, ?)"
TAKE_NONCE: Final = (
    "DELETE FROM tg_kms_nonces WHERE nonce = ? AND tee_id = ? AND expires_at > ? RETURNING 1"
)
ADD_SESSION: Final = (
    "INSERT INTO tg_kms_sessions (digest, tee_id, public_key, expires_at) VALUES (?, ?, ?, ?)"
)
GET_SESSION: Final = (
    "SELECT tee_id, public_key, expires_at FROM tg_kms_sessions"
    " WHERE digest = ? AND revoked = 0 AND expires_at > ?"
)
HAS_SESSION: Final = (
    "SELECT 1 FROM tg_kms_sessions"
    " WHERE tee_id = ? AND public_key = ? AND revoked = 0 AND expires_at > ? LIMIT 1"
)
ADD_GRANT: Final = (
    "INSERT INTO tg_kms_grants (grant_id, tee_id, worker_key, job, tenant, request_id,"
    " expires_at, sealed_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
GET_GRANT: Final = (
    "SELECT grant_id, tee_id, worker_key, job, tenant, request_id, expires_at, sealed_key,"
    " released, revoked FROM tg_kms_grants WHERE grant_id = ?"
)
# Read the key under the write lock / row lock, then flip the flag; the UPDATE's
# WHERE decides who wins when two callers race.
LOCK_GRANT_KEY: Final = "SELECT sealed_key FROM tg_kms_grants WHERE grant_id = ?"
CLAIM_GRANT: Final = (
    "UPDATE tg_kms_grants SET released = 1, sealed_key = ?"
    " WHERE grant_id = ? AND released = 0 AND revoked = 0 AND expires_at > ?"
)
REVOKE_SESSIONS: Final = (
    "UPDATE tg_kms_sessions SET revoked = 1 WHERE tee_id = ? AND revoked = 0 AND expires_at > ?"
)
REVOKE_SESSIONS_OF_KEY: Final = REVOKE_SESSIONS + " AND public_key = ?"
REVOKE_GRANTS: Final = (
    "UPDATE tg_kms_grants SET revoked = 1, sealed_key = ?"
    " WHERE tee_id = ? AND released = 0 AND revoked = 0 AND expires_at > ?"
)
REVOKE_GRANTS_OF_KEY: Final = REVOKE_GRANTS + " AND worker_key = ?"
PURGE_NONCES: Final = "DELETE FROM tg_kms_nonces WHERE expires_at <= ?"
WIPE_EXPIRED_KEYS: Final = (
    "UPDATE tg_kms_grants SET sealed_key = ? WHERE expires_at <= ? AND sealed_key <> ?"
)
PURGE_GRANTS: Final = "DELETE FROM tg_kms_grants WHERE expires_at <= ?"
PURGE_SESSIONS: Final = "DELETE FROM tg_kms_sessions WHERE expires_at <= ?"
