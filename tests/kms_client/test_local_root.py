"""LocalRootKey: sources, the key table, wrong roots, shredding, Shamir."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from kms_client import shamir
from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from kms_client.local_root import LocalRootKey, LocalRootSpec
from kms_client.root_uri import parse_local
from tokengate.errors import ConfigError


def _key_file(path: Path, key: bytes | None = None, mode: int = 0o600) -> bytes:
    key = key or os.urandom(32)
    path.write_text(base64.b64encode(key).decode() + "\n")
    path.chmod(mode)
    return key


def _spec(tmp_path: Path, uri: str) -> LocalRootSpec:
    return parse_local(uri, data_dir=tmp_path)


async def _roundtrip(root: LocalRootKey) -> None:
    await root.open()
    kwk, ref = await root.create_kwk(1)
    assert len(kwk) == 32
    assert kwk not in ref
    assert await root.open_kwk(1, ref) == kwk
    assert await root.random(32) is None


async def test_dev_default_creates_a_private_root_file_and_warns_once(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    root = LocalRootKey(_spec(tmp_path, "local:"))
    assert root.is_dev_default
    await _roundtrip(root)
    key_file = tmp_path / "kms" / "root.key"
    table = tmp_path / "kms" / "root-kwks.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(table.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    again = LocalRootKey(_spec(tmp_path, "local:"))
    await again.open()
    assert [r.getMessage() for r in caplog.records].count(
        f"kms: created development root key {key_file}; set keys.root for production"
    ) == 1


async def test_file_source(tmp_path) -> None:
    _key_file(tmp_path / "root.key")
    await _roundtrip(LocalRootKey(_spec(tmp_path, f"local:file={tmp_path / 'root.key'}")))


async def test_file_source_readable_by_others_is_refused(tmp_path) -> None:
    _key_file(tmp_path / "root.key", mode=0o644)
    root = LocalRootKey(_spec(tmp_path, f"local:file={tmp_path / 'root.key'}"))
    with pytest.raises(RootError, match="readable by others"):
        await root.open()


async def test_explicit_missing_file_is_not_created(tmp_path) -> None:
    root = LocalRootKey(_spec(tmp_path, f"local:file={tmp_path / 'absent.key'}"))
    with pytest.raises(RootUnavailable, match=r"absent.key does not exist"):
        await root.open()
    assert not (tmp_path / "absent.key").exists()


async def test_env_source_hex_and_base64(tmp_path) -> None:
    key = os.urandom(32)
    for value in (key.hex(), base64.b64encode(key).decode()):
        root = LocalRootKey(_spec(tmp_path, "local:env=TG_ROOT"), environ={"TG_ROOT": value})
        await _roundtrip(root)


@pytest.mark.parametrize(
    ("environ", "error", "message"),
    [
        ({}, RootUnavailable, "TG_ROOT is not set"),
        ({"TG_ROOT": "not a key"}, RootError, "not a base64 or hex 32-byte key"),
        ({"TG_ROOT": base64.b64encode(b"x" * 16).decode()}, RootError, "32-byte key"),
    ],
)
async def test_env_source_errors(tmp_path, environ, error, message) -> None:
    root = LocalRootKey(_spec(tmp_path, "local:env=TG_ROOT"), environ=environ)
    with pytest.raises(error, match=message):
        await root.open()


async def test_another_root_key_is_named_as_such(tmp_path) -> None:
    env = {"TG_ROOT": os.urandom(32).hex()}
    await LocalRootKey(_spec(tmp_path, "local:env=TG_ROOT"), environ=env).open()
    other = LocalRootKey(
        _spec(tmp_path, "local:env=TG_ROOT"), environ={"TG_ROOT": os.urandom(32).hex()}
    )
    with pytest.raises(WrongRoot, match=r"does not match key table .* another root"):
        await other.open()


async def test_passphrase_right_and_wrong(tmp_path) -> None:
    good = LocalRootKey(
        _spec(tmp_path, "local:passphrase-env=TG_PW"), environ={"TG_PW": "correct horse battery"}
    )
    await _roundtrip(good)
    bad = LocalRootKey(
        _spec(tmp_path, "local:passphrase-env=TG_PW"), environ={"TG_PW": "wrong horse battery"}
    )
    with pytest.raises(RootAuthError, match="wrong passphrase"):
        await bad.open()


async def test_passphrase_file_and_short_passphrase(tmp_path) -> None:
    (tmp_path / "pw").write_text("a long enough passphrase\n")
    (tmp_path / "pw").chmod(0o600)
    await _roundtrip(LocalRootKey(_spec(tmp_path, f"local:passphrase-file={tmp_path / 'pw'}")))
    short = LocalRootKey(_spec(tmp_path, "local:passphrase-env=TG_PW"), environ={"TG_PW": "short"})
    with pytest.raises(ConfigError, match="shorter than 12"):
        await short.open()


async def test_destroyed_kwk_no_longer_opens_even_with_the_root(tmp_path) -> None:
    root = LocalRootKey(_spec(tmp_path, "local:"))
    await root.open()
    kwk1, ref1 = await root.create_kwk(1)
    kwk2, ref2 = await root.create_kwk(2)
    await root.destroy_kwk(1, ref1)
    with pytest.raises(WrongRoot, match="kwk v1 is not in key table"):
        await root.open_kwk(1, ref1)
    assert await root.open_kwk(2, ref2) == kwk2
    table = (tmp_path / "kms" / "root-kwks.json").read_text()
    assert ref1.hex() not in table
    assert base64.b64encode(kwk1).decode() not in table


async def test_reference_for_another_version_is_refused(tmp_path) -> None:
    root = LocalRootKey(_spec(tmp_path, "local:"))
    await root.open()
    _, ref = await root.create_kwk(1)
    with pytest.raises(WrongRoot):
        await root.open_kwk(2, ref)


async def test_closed_root_refuses(tmp_path) -> None:
    root = LocalRootKey(_spec(tmp_path, "local:"))
    await root.open()
    _, ref = await root.create_kwk(1)
    await root.close()
    with pytest.raises(RootError, match="not open"):
        await root.open_kwk(1, ref)


async def test_shamir_root_lifecycle(tmp_path) -> None:
    spec = _spec(tmp_path, "local:shamir")
    shares = LocalRootKey.create_shamir(spec.table, shares=5, threshold=3)
    root = LocalRootKey(spec)
    assert root.needs_shares
    with pytest.raises(RootAuthError, match="waiting for shares"):
        await root.open()
    root.provide_shares([shares[4], shares[0], shares[2]])
    await _roundtrip(root)
    assert not root.needs_shares


async def test_shamir_insufficient_and_wrong_shares(tmp_path) -> None:
    spec = _spec(tmp_path, "local:shamir")
    shares = LocalRootKey.create_shamir(spec.table, shares=3, threshold=2)
    root = LocalRootKey(spec)
    root.provide_shares(shares[:1])
    with pytest.raises(RootAuthError, match="1 of 2 required shares"):
        await root.open()
    forged = shamir.Share(shares[1].set_id, 2, shares[1].x, os.urandom(32))
    root.provide_shares([shares[0], forged])
    with pytest.raises(RootAuthError, match="shares do not rebuild the root"):
        await root.open()


async def test_shamir_without_a_table_says_how_to_start(tmp_path) -> None:
    root = LocalRootKey(_spec(tmp_path, "local:shamir"))
    root.provide_shares(shamir.split(os.urandom(32), shares=2, threshold=2))
    with pytest.raises(RootUnavailable, match="run 'tokengate kms split'"):
        await root.open()


async def test_split_of_an_existing_root_rebuilds_it(tmp_path) -> None:
    file_root = LocalRootKey(_spec(tmp_path, "local:"))
    await file_root.open()
    kwk, ref = await file_root.create_kwk(1)
    shares = file_root.split(shares=3, threshold=2)
    shared = LocalRootKey(_spec(tmp_path, "local:shamir"))
    shared.provide_shares(shares[1:])
    await shared.open()
    assert await shared.open_kwk(1, ref) == kwk


async def test_corrupt_table_is_named(tmp_path) -> None:
    (tmp_path / "kms").mkdir()
    (tmp_path / "kms" / "root-kwks.json").write_text("{not json")
    with pytest.raises(RootError, match=r"key table .* is corrupt"):
        await LocalRootKey(_spec(tmp_path, "local:")).open()


def test_description_never_contains_the_secret(tmp_path) -> None:
    key = os.urandom(32).hex()
    root = LocalRootKey(_spec(tmp_path, "local:env=TG_ROOT"), environ={"TG_ROOT": key})
    assert root.description == "local:env=TG_ROOT"
