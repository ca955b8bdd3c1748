"""The SQLite MFA schema and the conversions between its rows and the MFA records.

Times are stored as Unix seconds (REAL); BLOB columns hold ciphertexts,
digests, credential ids and COSE keys as raw bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proxy.auth.totp import TotpAlgorithm, TotpParams
from proxy.mfa.records import TotpEnrolment, WebAuthnCredential

SCHEMA = """
CREATE TABLE IF NOT EXISTS mfa_totp (
  subject TEXT NOT NULL, slot TEXT NOT NULL CHECK (slot IN ('pending', 'active')),
  ciphertext BLOB NOT NULL, algorithm TEXT NOT NULL, digits INTEGER NOT NULL,
  period INTEGER NOT NULL, created_at REAL NOT NULL, confirmed_at REAL, last_step INTEGER,
  PRIMARY KEY (subject, slot));
CREATE TABLE IF NOT EXISTS mfa_recovery_set (
  subject TEXT PRIMARY KEY, key_version INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mfa_recovery_code (
  subject TEXT NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (subject, digest));
CREATE TABLE IF NOT EXISTS mfa_webauthn (
  credential_id BLOB PRIMARY KEY, subject TEXT NOT NULL, public_key BLOB NOT NULL,
  sign_count INTEGER NOT NULL, user_handle BLOB NOT NULL, aaguid TEXT NOT NULL,
  created_at REAL NOT NULL, last_used_at REAL);
CREATE INDEX IF NOT EXISTS mfa_webauthn_subject ON mfa_webauthn (subject, created_at);
CREATE TABLE IF NOT EXISTS mfa_challenge (
  subject TEXT NOT NULL, ceremony TEXT NOT NULL, challenge BLOB NOT NULL,
  expires_at REAL NOT NULL, PRIMARY KEY (subject, ceremony));
"""

type Row = tuple[Any, ...]  # sqlite3 rows are untyped; converted right here


def ts(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValueError("mfa: times must be timezone-aware")
    return at.timestamp()


def dt(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def totp(row: Row) -> TotpEnrolment:
    subject, ciphertext, algorithm, digits, period, created, confirmed, last_step = row
    params = TotpParams(TotpAlgorithm(str(algorithm)), int(digits), int(period))
    return TotpEnrolment(
        subject=str(subject),
        ciphertext=bytes(ciphertext),
        params=params,
        created_at=dt(created),
        confirmed_at=None if confirmed is None else dt(confirmed),
        last_step=None if last_step is None else int(last_step),
    )


def credential(row: Row) -> WebAuthnCredential:
    subject, cred_id, public_key, count, handle, aaguid, created, used = row
    return WebAuthnCredential(
        subject=str(subject),
        credential_id=bytes(cred_id),
        public_key=bytes(public_key),
        sign_count=int(count),
        user_handle=bytes(handle),
        aaguid=str(aaguid),
        created_at=dt(created),
        last_used_at=None if used is None else dt(used),
    )
