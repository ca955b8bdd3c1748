"""Salted scrypt password hashes."""

from __future__ import annotations

import pytest
from demo_backend.passwords import hash_password, verify_password


def test_right_password_verifies() -> None:
    assert verify_password("alice", hash_password("alice"))


@pytest.mark.parametrize("attempt", ["Alice", "alice ", "", "bob", "alicealice"])
def test_wrong_password_fails(attempt: str) -> None:
    assert not verify_password(attempt, hash_password("alice"))


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("alice") != hash_password("alice")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "alice",
        "bcrypt$16384$8$1$c2FsdA==$aGFzaA==",
        "scrypt$16384$8$1$not-base64!$aGFzaA==",
        "scrypt$x$8$1$c2FsdA==$aGFzaA==",
        "scrypt$16384$8$1$c2FsdA==",
        # Parameters a tampered row could use to burn CPU or memory are refused, not run.
        "scrypt$1073741824$8$1$c2FsdA==$aGFzaA==",
        "scrypt$16384$1024$1$c2FsdA==$aGFzaA==",
        "scrypt$16384$8$1024$c2FsdA==$aGFzaA==",
        "scrypt$3$8$1$c2FsdA==$aGFzaA==",
    ],
)
def test_malformed_stored_hash_never_matches(stored: str) -> None:
    assert not verify_password("alice", stored)


def test_altered_hash_fails() -> None:
    stored = hash_password("alice")
    head, digest = stored.rsplit("$", 1)
    altered = digest[:-4] + ("AAA=" if not digest.endswith("AAA=") else "BBB=")
    assert not verify_password("alice", f"{head}${altered}")
