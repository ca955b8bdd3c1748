"""kms.throttle: the per-peer token bucket, its memory bound and its aggregated refusal counts."""

from __future__ import annotations

import pytest

from kms.throttle import EVICTED, OVERFLOW, PeerThrottle, peer_key


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(ticks: Ticks, **over: float) -> PeerThrottle:
    options: dict[str, float] = {"rate": 0.5, "burst": 3, "max_peers": 100, "report_every": 60}
    options.update(over)
    return PeerThrottle(
        rate=options["rate"],
        burst=int(options["burst"]),
        max_peers=int(options["max_peers"]),
        report_every=options["report_every"],
        clock=ticks,
    )


def test_burst_then_refused_with_the_wait_then_refilled() -> None:
    ticks = Ticks()
    throttle = _throttle(ticks)
    assert [throttle.take("a") for _ in range(3)] == [None, None, None]
    assert throttle.take("a") == pytest.approx(2.0)  # one token at 0.5/s
    ticks.now += 1.0
    assert throttle.take("a") == pytest.approx(1.0)
    ticks.now += 1.0
    assert throttle.take("a") is None
    assert throttle.take("a") is not None


def test_another_peer_is_unaffected() -> None:
    ticks = Ticks()
    throttle = _throttle(ticks)
    for _ in range(3):
        throttle.take("a")
    assert throttle.take("a") is not None
    assert [throttle.take("b") for _ in range(3)] == [None, None, None]


def test_refusals_are_reported_once_per_interval_with_their_count() -> None:
    ticks = Ticks()
    throttle = _throttle(ticks, report_every=60)
    assert throttle.refuse("a") == 1  # the first one is reported at once
    assert [throttle.refuse("a") for _ in range(500)] == [None] * 500
    assert throttle.refuse("b") == 1  # per peer
    ticks.now += 60
    assert throttle.refuse("a") == 501
    assert throttle.drain() == []


def test_drain_hands_out_unreported_counts_once() -> None:
    ticks = Ticks()
    throttle = _throttle(ticks)
    throttle.refuse("a")
    for _ in range(7):
        throttle.refuse("a")
    throttle.refuse("b")
    for _ in range(2):
        throttle.refuse("b")
    assert sorted(throttle.drain()) == [("a", 7), ("b", 2)]
    assert throttle.drain() == []


def test_the_table_is_bounded_idle_peers_evicted_then_newcomers_share_overflow() -> None:
    ticks = Ticks()
    throttle = _throttle(ticks, max_peers=16, rate=1.0, burst=2)
    for i in range(16):
        assert throttle.take(f"p{i}") is None
    assert len(throttle) == 16
    # every peer is active (bucket not refilled): newcomers share one bucket
    assert throttle.take("new-1") is None
    assert throttle.take("new-2") is None
    assert throttle.take("new-3") is not None
    assert len(throttle) == 16
    ticks.now += 10  # all refilled and nothing unreported: idle peers make room
    assert throttle.take("fresh") is None
    assert len(throttle) <= 16
    assert throttle.take("fresh") is None
    assert throttle.take("fresh") is not None  # its own bucket of 2, not a shared one


def test_counts_of_evicted_peers_are_not_lost() -> None:
    ticks = Ticks()
    throttle = _throttle(ticks, max_peers=16)
    throttle.refuse("p0")
    throttle.refuse("p0")  # one unreported refusal
    for i in range(1, 16):
        throttle.take(f"p{i}")
    throttle.take("new")  # table full of active peers: p0 dropped for the overflow bucket
    drained = dict(throttle.drain())
    assert drained.get(EVICTED) == 1
    assert "p0" not in drained
    assert OVERFLOW not in drained


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
        ("", "unknown"),
    ],
    ids=["v4", "v6", "v6-same-prefix", "v4-mapped", "none", "empty"],
)
def test_peer_keys(address: str | None, key: str) -> None:
    assert peer_key(address) == key


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="throttle"):
        PeerThrottle(rate=0, burst=1)
