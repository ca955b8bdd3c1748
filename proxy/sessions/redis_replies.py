"""Decoding the Redis session store's replies; anything unexpected fails closed.

A reply of the wrong type, a number that does not parse or a session hash
missing a field means corruption or a server we do not understand: each raises
SessionStoreUnavailable rather than being read as "no session" or "allowed".
"""

from __future__ import annotations

from proxy.sessions.codec import StoredTimes, decode_session
from proxy.sessions.errors import RefreshRejected, SessionStoreUnavailable
from proxy.sessions.model import Session
from proxy.sessions.refresh import Family
from proxy.sessions.rules import Marks, live


def text(value: object) -> str:
    """A bulk string reply as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise SessionStoreUnavailable("sessions: unexpected redis reply")


def as_int(value: object) -> int:
    """An integer reply."""
    if isinstance(value, int):
        return value
    raise SessionStoreUnavailable("sessions: unexpected redis reply")


def as_float(value: object) -> float:
    """A stored number."""
    try:
        return float(text(value))
    except ValueError as e:
        raise SessionStoreUnavailable("sessions: corrupt session record") from e


def number(value: object) -> float | None:
    """A stored number that may be absent (a mark never set)."""
    return None if value is None else as_float(value)


def fields(raw: object) -> dict[str, str]:
    """An HGETALL reply as text."""
    if not isinstance(raw, dict):
        raise SessionStoreUnavailable("sessions: unexpected redis reply")
    return {text(key): text(value) for key, value in raw.items()}


def live_family(
    sid: str, index: dict[str, str], raw: object, marks: Marks, now: float
) -> tuple[Session, Family]:
    """The session a token's index names, if it is that family's and alive (refresh rule 7)."""
    stored = fields(raw)
    if not stored or stored.get("fam") != index.get("fam"):
        raise RefreshRejected("revoked")
    session, family = decode(sid, stored)
    if not live(session, marks, now):
        raise RefreshRejected("expired")
    return session, family


def decode(sid: str, f: dict[str, str]) -> tuple[Session, Family]:
    """A session hash as (Session, Family); SessionStoreUnavailable if corrupt."""
    try:
        times = StoredTimes(float(f["c"]), float(f["seen"]), float(f["abs"]), float(f["idle"]))
        family = Family(
            current=f["rtc"],
            previous=f.get("rtp"),
            rotated_at=float(f["rtr"]) if "rtr" in f else None,
        )
        session = decode_session(
            sid=sid, sub=f["sub"], family_id=f["fam"], identity=f["id"], times=times
        )
    except (KeyError, ValueError) as e:
        raise SessionStoreUnavailable("sessions: corrupt session record") from e
    return session, family
