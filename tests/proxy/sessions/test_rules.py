"""Session validity rules (pure): idle, absolute, revocation marks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.sessions.model import Session
from proxy.sessions.rules import Marks, live, revoked_by_marks, valid_times

S = Session(
    sid="s" * 43,
    sub="alice",
    tenant=None,
    roles=(),
    amr=("pwd",),
    acr=None,
    auth_time=100,
    created=100.5,
    last_seen=200.0,
    absolute_expiry=1000.0,
    idle_timeout=300.0,
    family_id="f" * 22,
)


@pytest.mark.parametrize(
    ("now", "alive"),
    [(100.5, True), (499.9, True), (500.0, False), (999.0, False)],
)
def test_idle_expiry_counts_from_last_seen(now: float, alive: bool) -> None:
    assert S.idle_expiry == 500.0
    assert S.alive(now) is alive


def test_absolute_expiry_wins_over_activity() -> None:
    assert S.expires_at == 500.0
    active = replace(S, last_seen=950.0)
    assert active.expires_at == 1000.0
    assert active.alive(999.9)
    assert not active.alive(1000.0)


@pytest.mark.parametrize(
    ("marks", "revoked"),
    [
        (Marks(), False),
        (Marks(user=100.4), False),
        (Marks(user=100.5), True),  # a mark revokes sessions created at or before it
        (Marks(everyone=150.0), True),
        (Marks(user=50.0, everyone=100.49), False),
        (Marks(user=200.0, everyone=1.0), True),
    ],
)
def test_marks_revoke_what_was_created_before(marks: Marks, revoked: bool) -> None:
    assert revoked_by_marks(S.created, None, marks) is revoked
    assert live(S, marks, 150.0) is not revoked


@pytest.mark.parametrize(
    ("issued_at", "mark", "revoked"),
    [
        (99.0, 100.2, True),  # a token from a whole second before the mark's second
        (100.0, 100.2, False),  # same second: decided by the session's creation time
        (101.0, 100.2, False),
    ],
)
def test_token_issue_time_is_compared_by_whole_seconds(
    issued_at: float, mark: float, revoked: bool
) -> None:
    assert revoked_by_marks(100.3, issued_at, Marks(user=mark)) is revoked


def test_valid_times_applies_every_rule() -> None:
    base = {
        "created": 100.0,
        "last_seen": 200.0,
        "absolute_expiry": 1000.0,
        "idle_timeout": 300.0,
        "issued_at": 150.0,
        "marks": Marks(),
    }
    assert valid_times(**base, now=300.0)  # type: ignore[arg-type]
    assert not valid_times(**base, now=500.0)  # type: ignore[arg-type]
    assert not valid_times(**(base | {"absolute_expiry": 250.0}), now=300.0)  # type: ignore[arg-type]
    assert not valid_times(**(base | {"marks": Marks(everyone=120.0)}), now=300.0)  # type: ignore[arg-type]
