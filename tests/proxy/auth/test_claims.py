"""Registered claim checks with an injected clock, and the in-memory replay guard."""

from __future__ import annotations

import pytest

from proxy.auth import claims as c
from proxy.auth.claims import ClaimsError, MemoryReplayGuard

NOW = 1_700_000_000.0
GOOD = {"iss": "https://gw", "aud": "gw", "iat": NOW, "nbf": NOW, "exp": NOW + 300}


def _check(claims: dict[str, object], **kw: object) -> None:
    options: dict[str, object] = {"now": NOW, "audience": "gw", "issuer": "https://gw"}
    options.update(kw)
    c.check_registered(claims, **options)  # type: ignore[arg-type]


def test_good_claims_pass() -> None:
    _check(GOOD)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"exp": NOW - 31, "iat": NOW - 100}, "expired"),
        ({"exp": NOW - 30, "iat": NOW - 100}, "expired"),
        ({"nbf": NOW + 31}, "not yet valid"),
        ({"iat": NOW + 31, "exp": NOW + 400}, "issued in the future"),
        ({"aud": "other"}, "wrong audience"),
        ({"aud": ["other", "x"]}, "wrong audience"),
        ({"aud": []}, "wrong audience"),
        ({"aud": 1}, "wrong audience"),
        ({"iss": "https://gw/"}, "wrong issuer"),
        ({"iss": None}, "wrong issuer"),
        ({"exp": NOW}, "exp not after iat"),
        ({"exp": "9999999999"}, "numeric date"),
        ({"exp": True}, "numeric date"),
        ({"iat": -1}, "numeric date"),
        ({"nbf": float("inf")}, "numeric date"),
    ],
)
def test_bad_claims_fail(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ClaimsError) as info:
        _check({**GOOD, **change})
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "change",
    [
        {"exp": NOW - 29, "iat": NOW - 100},
        {"nbf": NOW + 29},
        {"iat": NOW + 29, "exp": NOW + 400},
        {"aud": ["x", "gw"]},
    ],
)
def test_within_leeway_and_audience_lists_pass(change: dict[str, object]) -> None:
    _check({**GOOD, **change})


def test_zero_leeway_is_exact() -> None:
    _check({**GOOD, "exp": NOW + 1}, leeway=0)
    with pytest.raises(ClaimsError):
        _check({**GOOD, "exp": NOW}, leeway=0)


def test_required_claims_must_be_present() -> None:
    _check(GOOD, required=("exp", "iat", "nbf"))
    without = {k: v for k, v in GOOD.items() if k != "nbf"}
    with pytest.raises(ClaimsError, match="not acceptable"):
        _check(without, required=("exp", "iat", "nbf"))


def test_issuer_is_not_checked_when_not_configured() -> None:
    _check({**GOOD, "iss": "anyone"}, issuer=None)


@pytest.mark.parametrize("leeway", [-1, 121, 1e9])
def test_leeway_is_bounded(leeway: float) -> None:
    assert c.check_leeway(120) == 120
    with pytest.raises(ValueError, match="leeway"):
        c.check_leeway(leeway)


def test_typed_accessors() -> None:
    claims = {"s": "x", "l": ["a", "b"], "n": None, "bad": [1], "empty": ""}
    assert c.string(claims, "s") == "x"
    assert c.string_list(claims, "l") == ("a", "b")
    assert c.optional_string(claims, "n") is None
    assert c.string_list(claims, "missing", required=False) == ()
    for call in (
        lambda: c.string(claims, "empty"),
        lambda: c.string(claims, "l"),
        lambda: c.string_list(claims, "bad"),
        lambda: c.string_list(claims, "missing"),
        lambda: c.string_list({"l": ["a"] * 300}, "l"),
    ):
        with pytest.raises(ClaimsError):
            call()


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


async def test_replay_guard_first_use_then_replay_then_expiry() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(now=clock)
    assert await guard.first_use("ns", "v", 10)
    assert not await guard.first_use("ns", "v", 10)
    assert await guard.first_use("other", "v", 10)
    clock.t += 10
    assert await guard.first_use("ns", "v", 10)


async def test_replay_guard_fails_closed_when_full() -> None:
    clock = Clock()
    guard = MemoryReplayGuard(now=clock, max_entries=2)
    assert await guard.first_use("ns", "a", 10)
    assert await guard.first_use("ns", "b", 10)
    assert not await guard.first_use("ns", "c", 10)
    assert not await guard.first_use("ns", "a", 10)
    clock.t += 11
    assert await guard.first_use("ns", "c", 10)
