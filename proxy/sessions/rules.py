"""When a stored session still counts: the rules every store applies the same way.

Rules (each store evaluates them server-side with the caller's ``now``):

1. **Existence.** Revoking one session deletes its record; a missing record is
   revoked, whatever the access token says.
2. **Absolute lifetime.** ``now >= absolute_expiry`` ends the session, however
   active it is.
3. **Idle timeout.** ``now >= last_seen + idle_timeout`` ends it. ``last_seen``
   is written at most once per ``touch_interval`` (so a busy session does not
   write on every request), hence a session may end up to ``touch_interval``
   early, never late.
4. **Revocation marks.** "Revoke all of a user's" writes the user's mark and
   "revoke all" writes the global epoch: one write each, O(1) whatever the
   number of sessions. A mark ``M`` revokes every session created at or before
   ``M`` (by its stored ``created``) and every token whose whole-second
   ``iat`` lies before ``M``'s second. Marks only move forward.
5. **Subject.** A check naming a ``sub`` other than the stored one fails.

Clock skew between replicas shifts rule 4 by the skew; it errs towards
revoking a login made in the same instant as a revoke, never towards keeping
an old one.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.sessions.model import Session


@dataclass(frozen=True, slots=True)
class Marks:
    """The revocation marks relevant to one session (None: never set)."""

    user: float | None = None
    everyone: float | None = None

    def latest(self) -> float | None:
        """The later of the two marks."""
        marks = [m for m in (self.user, self.everyone) if m is not None]
        return max(marks) if marks else None


def revoked_by_marks(created: float, issued_at: float | None, marks: Marks) -> bool:
    """Rule 4: the session (or the token issued at ``issued_at``) predates a mark."""
    mark = marks.latest()
    if mark is None:
        return False
    if created <= mark:
        return True
    return issued_at is not None and int(issued_at) < int(mark)


def live(session: Session, marks: Marks, now: float) -> bool:
    """Rules 2 to 4 for a session record that exists (rule 1)."""
    return session.alive(now) and not revoked_by_marks(session.created, None, marks)


def valid_times(
    *,
    created: float,
    last_seen: float,
    absolute_expiry: float,
    idle_timeout: float,
    issued_at: float | None,
    marks: Marks,
    now: float,
) -> bool:
    """Rules 2 to 4 on raw stored fields (the per-request check reads no full record)."""
    if now >= absolute_expiry or now >= last_seen + idle_timeout:
        return False
    return not revoked_by_marks(created, issued_at, marks)
