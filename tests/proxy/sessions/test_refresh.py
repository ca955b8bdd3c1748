"""The rotation rule (pure): token shape, stored hash, and the decision table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.sessions.errors import RefreshRejected
from proxy.sessions.refresh import (
    DEFAULT_GRACE,
    Family,
    Outcome,
    decide,
    new_refresh_token,
    presented_hash,
    token_hash,
)


def test_tokens_are_256_bit_base64url_and_distinct() -> None:
    tokens = {new_refresh_token()[0] for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(t) == 43 and set(t) <= set(ALPHABET) for t in tokens)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_stored_hash_is_domain_separated_sha256() -> None:
    # Known answer: SHA-256("tokengate/refresh/v1" || 0x00 || "A" * 43).
    expected = "d75959050bf6c69e2fc9069bd60852d9c2661dfb30bdc5bbd9782a15420b24af"
    assert token_hash("A" * 43) == expected
    token, stored = new_refresh_token()
    assert stored == token_hash(token)
    assert token not in stored


@pytest.mark.parametrize("bad", ["", "A" * 42, "A" * 44, "A" * 42 + "=", "A" * 42 + "/", "é" * 43])
def test_malformed_tokens_are_refused_before_hashing(bad: str) -> None:
    with pytest.raises(RefreshRejected) as caught:
        presented_hash(bad)
    assert caught.value.reason == "malformed"
    assert caught.value.status == 401
    assert bad not in str(caught.value) or bad == ""


FAMILY = Family(current="c", previous="p", rotated_at=1000.0)


@pytest.mark.parametrize(
    ("presented", "now", "outcome"),
    [
        ("c", 1000.0, Outcome.ROTATE),
        ("c", 99999.0, Outcome.ROTATE),  # the current token rotates whenever it comes
        ("p", 1000.0, Outcome.GRACE),
        ("p", 1010.0, Outcome.GRACE),  # grace is inclusive
        ("p", 999.0, Outcome.GRACE),  # a replica whose clock is a second behind
        ("p", 1010.001, Outcome.REUSE),
        ("older", 1001.0, Outcome.REUSE),  # anything older is reuse, even inside the grace
    ],
)
def test_decision_table(presented: str, now: float, outcome: Outcome) -> None:
    assert decide(presented, FAMILY, now=now, grace=DEFAULT_GRACE) is outcome


def test_a_fresh_family_has_no_grace() -> None:
    fresh = Family(current="c")
    assert decide("c", fresh, now=0, grace=10) is Outcome.ROTATE
    assert decide("p", fresh, now=0, grace=10) is Outcome.REUSE


def test_zero_grace_turns_every_replay_into_reuse() -> None:
    assert decide("p", FAMILY, now=1000.0, grace=0) is Outcome.GRACE
    assert decide("p", FAMILY, now=1000.5, grace=0) is Outcome.REUSE


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0, max_value=60))
def test_rotation_moves_current_to_previous(now: float, grace: float) -> None:
    after = FAMILY.rotated("n", now)
    assert after == Family(current="n", previous="c", rotated_at=now)
    assert decide("n", after, now=now, grace=grace) is Outcome.ROTATE
    assert decide("c", after, now=now, grace=grace) is Outcome.GRACE
    assert decide("p", after, now=now, grace=grace) is Outcome.REUSE
