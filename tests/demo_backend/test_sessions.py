"""The session secret file and the signed cookie."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from demo_backend.sessions import KEY_FILE, SecretFileError, SessionSigner, load_or_create_secret


def test_secret_is_created_private_and_reused(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path)
    path = tmp_path / KEY_FILE
    assert len(secret) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(tmp_path) == secret


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secret_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    load_or_create_secret(tmp_path)
    os.chmod(tmp_path / KEY_FILE, mode)
    with pytest.raises(SecretFileError, match="must not be readable by group or others"):
        load_or_create_secret(tmp_path)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_secret_of_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(b"k" * size)
    os.chmod(path, 0o600)
    with pytest.raises(SecretFileError, match="exactly 32 bytes"):
        load_or_create_secret(tmp_path)


def test_secret_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"k" * 32)
    os.chmod(target, 0o600)
    (tmp_path / KEY_FILE).symlink_to(target)
    # O_NOFOLLOW: the file must be the key itself, never a link to one.
    with pytest.raises(OSError, match=rf"\[Errno {errno.ELOOP}\]"):
        load_or_create_secret(tmp_path)


def test_minted_cookie_verifies_to_its_hash() -> None:
    signer = SessionSigner(b"s" * 32)
    new = signer.mint()
    assert signer.verify(new.cookie) == new.sid_hash
    assert signer.mint().cookie != new.cookie


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("index", [0, 20, 42, 44, 60, -1])
def test_any_altered_character_is_refused(index: int) -> None:
    signer = SessionSigner(b"s" * 32)
    cookie = signer.mint().cookie
    assert signer.verify(_flip(cookie, index)) is None


@pytest.mark.parametrize(
    "cookie", ["", ".", "nodot", "a.b", "é.é", "x" * 150 + "." + "y" * 60, "a.b.c"]
)
def test_malformed_cookie_is_refused(cookie: str) -> None:
    assert SessionSigner(b"s" * 32).verify(cookie) is None


def test_cookie_from_another_secret_is_refused() -> None:
    cookie = SessionSigner(b"a" * 32).mint().cookie
    assert SessionSigner(b"b" * 32).verify(cookie) is None


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_signer_refuses_wrong_secret_size(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SessionSigner(b"s" * size)
