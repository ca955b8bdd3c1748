"""Shamir sharing of the root key: any k of n shares, and every way shares can be wrong."""

from __future__ import annotations

import itertools
import os

import pytest

from kms_client import shamir
from kms_client.errors import RootAuthError


@pytest.mark.parametrize(("n", "k"), [(2, 2), (3, 2), (5, 3), (7, 7)])
def test_every_k_subset_recovers_the_secret(n: int, k: int) -> None:
    secret = os.urandom(32)
    shares = shamir.split(secret, shares=n, threshold=k)
    for subset in itertools.combinations(shares, k):
        assert shamir.combine(list(subset)) == secret


def test_text_form_roundtrips() -> None:
    shares = shamir.split(os.urandom(32), shares=3, threshold=2)
    assert [shamir.Share.parse(s.encode()) for s in shares] == shares
    assert all(s.encode().startswith("tgshare1-") for s in shares)


def test_fewer_than_k_shares_are_refused() -> None:
    shares = shamir.split(os.urandom(32), shares=5, threshold=3)
    with pytest.raises(RootAuthError, match="2 of 3 required shares given"):
        shamir.combine(shares[:2])


def test_k_minus_one_shares_say_nothing_about_the_secret() -> None:
    """One share of a 2-of-n split is consistent with every possible secret byte."""
    one = shamir.split(bytes([0x42]), shares=3, threshold=2)[0]
    candidates = {
        shamir.combine([one, shamir.Share(one.set_id, 2, 2, bytes([y]))]) for y in range(256)
    }
    assert len(candidates) == 256


def test_mixed_splits_duplicates_and_lengths_are_refused() -> None:
    a = shamir.split(os.urandom(32), shares=3, threshold=2)
    b = shamir.split(os.urandom(32), shares=3, threshold=2)
    with pytest.raises(RootAuthError, match="different splits"):
        shamir.combine([a[0], b[1]])
    with pytest.raises(RootAuthError, match="given twice"):
        shamir.combine([a[0], a[0]])
    with pytest.raises(RootAuthError, match="no shares"):
        shamir.combine([])
    short = shamir.Share(a[1].set_id, 2, a[1].x, a[1].data[:5])
    with pytest.raises(RootAuthError, match="different lengths"):
        shamir.combine([a[0], short])


def test_a_tampered_share_gives_a_different_secret() -> None:
    secret = os.urandom(32)
    a, b, _ = shamir.split(secret, shares=3, threshold=2)
    bad = shamir.Share(b.set_id, 2, b.x, bytes([b.data[0] ^ 1]) + b.data[1:])
    assert shamir.combine([a, bad]) != secret
    assert shamir.combine([a, b]) == secret


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace("tgshare1", "tgshare2"), "not a tokengate share"),
        (lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"), "bad checksum"),
        (lambda t: t.replace("-", "_"), "not a tokengate share"),
        (lambda t: "", "not a tokengate share"),
    ],
)
def test_malformed_share_text_is_refused(mutate, message: str) -> None:
    text = shamir.split(os.urandom(32), shares=2, threshold=2)[0].encode()
    with pytest.raises(RootAuthError, match=message):
        shamir.Share.parse(mutate(text), position=2)


def test_mistyped_body_is_caught_by_the_checksum() -> None:
    text = shamir.split(os.urandom(32), shares=2, threshold=2)[0].encode()
    parts = text.split("-")
    parts[4] = ("b" if parts[4][0] != "b" else "c") + parts[4][1:]
    with pytest.raises(RootAuthError, match="share 1 has a bad checksum"):
        shamir.Share.parse("-".join(parts), position=1)


@pytest.mark.parametrize(("n", "k"), [(1, 1), (3, 1), (2, 3), (256, 2)])
def test_bad_split_parameters(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        shamir.split(b"x" * 32, shares=n, threshold=k)
