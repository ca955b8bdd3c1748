"""tee.worker.keys: generations, grace, lookup."""

from __future__ import annotations

import pytest

from tee.worker.keys import KeyRing
from tests.tee.worker.harness import Clock


def test_rotation_makes_a_new_generation() -> None:
    ring = KeyRing(clock=Clock())
    first = ring.current
    second = ring.rotate()
    assert (first.generation, second.generation) == (0, 1)
    assert first.public != second.public
    assert ring.current is second
    assert len(second.public) == 32


def test_the_replaced_key_lives_for_the_grace_only() -> None:
    clock = Clock()
    ring = KeyRing(grace=30, clock=clock)
    old = ring.current
    ring.rotate()
    assert ring.find(old.public) is old
    clock.t += 29.9
    assert ring.find(old.public) is old
    clock.t += 0.2
    assert ring.find(old.public) is None
    assert ring.find(ring.current.public) is ring.current


def test_each_replaced_key_gets_its_own_grace() -> None:
    clock = Clock()
    ring = KeyRing(grace=30, clock=clock)
    k0 = ring.current
    k1 = ring.rotate()
    clock.t += 20
    k2 = ring.rotate()
    assert [k.generation for k in ring.live()] == [2, 1, 0]
    clock.t += 15  # k0 replaced 35 s ago, k1 15 s ago
    assert ring.find(k0.public) is None
    assert ring.find(k1.public) is k1
    assert ring.live() == [k2, k1]


def test_zero_grace_drops_at_once_and_unknown_keys_are_none() -> None:
    ring = KeyRing(grace=0, clock=Clock())
    old = ring.current
    ring.rotate()
    assert ring.find(old.public) is None
    assert ring.find(b"\0" * 32) is None
    with pytest.raises(ValueError, match="grace"):
        KeyRing(grace=-1)


def test_the_private_key_is_not_in_the_repr() -> None:
    key = KeyRing().current
    assert "private" not in repr(key)
