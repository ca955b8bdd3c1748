"""The multi-statement transactions of the SQLite store: refresh rotation and purge.

Each runs on the store's thread inside one ``BEGIN IMMEDIATE`` transaction,
which holds the database's write lock across every process on the host: that
is the per-session refresh lock of :mod:`proxy.sessions.refresh` (rule 6). A
refusal is returned, not raised, so a reuse revocation commits before the
caller raises it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from proxy.sessions import sqlite_schema as q
from proxy.sessions.errors import RefreshRejected, RefreshReuseDetected
from proxy.sessions.model import RefreshResult, Session
from proxy.sessions.refresh import Family, Outcome, decide, new_refresh_token
from proxy.sessions.rules import live
from proxy.sessions.sqlite_guards import write


def rotate(
    conn: sqlite3.Connection, presented: str, *, now: float, grace: float
) -> RefreshResult | RefreshRejected:
    """The rotation rule for the token hash ``presented``."""
    with write(conn, durable=True):
        found = _family_of(conn, presented, now)
        if isinstance(found, RefreshRejected):
            return found
        session, family = found
        outcome = decide(presented, family, now=now, grace=grace)
        if outcome is Outcome.GRACE:
            return RefreshResult(session, "grace")
        if outcome is Outcome.REUSE:
            conn.execute("DELETE FROM tg_sessions WHERE sid = ?", (session.sid,))
            return RefreshReuseDetected(
                sid=session.sid, sub=session.sub, family_id=session.family_id
            )
        token, new_hash = new_refresh_token()
        seen = max(session.last_seen, now)
        conn.execute(
            "UPDATE tg_sessions SET rt_previous = rt_current, rt_current = ?,"
            " rt_rotated_at = ?, last_seen = ? WHERE sid = ?",
            (new_hash, now, seen, session.sid),
        )
        conn.execute(
            "INSERT INTO tg_refresh_tokens VALUES (?, ?, ?, ?)",
            (new_hash, session.sid, session.family_id, session.absolute_expiry),
        )
        return RefreshResult(replace(session, last_seen=seen), "rotated", token)


def _family_of(
    conn: sqlite3.Connection, presented: str, now: float
) -> tuple[Session, Family] | RefreshRejected:
    """The live session and family the hash belongs to (rule 7), or why not."""
    entry = conn.execute(
        "SELECT sid, family_id FROM tg_refresh_tokens WHERE hash = ? AND expires > ?",
        (presented, now),
    ).fetchone()
    if entry is None:
        return RefreshRejected("unknown")
    sid = str(entry[0])
    row = conn.execute(q.SELECT_SESSION, (sid,)).fetchone()
    if row is None:
        return RefreshRejected("revoked")
    session, family, marks = q.session_from_row(sid, row)
    if session.family_id != entry[1]:
        return RefreshRejected("revoked")
    if not live(session, marks, now):
        return RefreshRejected("expired")
    return session, family


def purge(conn: sqlite3.Connection, *, now: float, oldest_mark: float) -> int:
    """Delete dead sessions, tokens, replay entries, counters and marks older than needed."""
    with write(conn):
        n = conn.execute(
            "DELETE FROM tg_sessions WHERE absolute_expiry <= :now"
            " OR last_seen + idle_timeout <= :now"
            " OR created <= (SELECT max(mark) FROM tg_marks"
            "   WHERE scope IN ('all', 'user:' || tg_sessions.subject_key))",
            {"now": now},
        ).rowcount
        n += conn.execute(
            "DELETE FROM tg_refresh_tokens WHERE expires <= ?"
            " OR sid NOT IN (SELECT sid FROM tg_sessions)",
            (now,),
        ).rowcount
        n += conn.execute("DELETE FROM tg_replay WHERE expires <= ?", (now,)).rowcount
        conn.execute(
            "DELETE FROM tg_failures WHERE window_end <= :now"
            " AND (locked_until IS NULL OR locked_until <= :now)",
            {"now": now},
        )
        # A user's mark matters only while a session created before it can be alive.
        conn.execute("DELETE FROM tg_marks WHERE scope != 'all' AND mark < ?", (oldest_mark,))
        return n
