"""The per-process limiter of last_seen writes."""

from __future__ import annotations

import pytest

from proxy.sessions.touch import TouchLimiter


def test_a_write_is_due_once_per_interval() -> None:
    t = TouchLimiter(60)
    assert t.due("a", 0)
    t.record("a", 0)
    assert not t.due("a", 59.9)
    assert t.due("a", 60)


def test_reads_seed_the_table_and_the_newest_wins() -> None:
    t = TouchLimiter(60)
    t.record("a", 100)  # another replica touched at 100
    t.record("a", 50)  # an older read does not move it back
    assert not t.due("a", 150)
    assert t.due("a", 160)


def test_forget_and_bounded_size() -> None:
    t = TouchLimiter(60, max_entries=2)
    for sid in ("a", "b", "c"):
        t.record(sid, 0)
    assert t.due("a", 1)  # evicted: costs one extra write, never a missed expiry
    assert not t.due("c", 1)
    t.forget("c")
    assert t.due("c", 1)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="touch"):
        TouchLimiter(-1)
