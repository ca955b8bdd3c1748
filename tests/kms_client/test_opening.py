"""open_key_manager: production refusals (remote: over http too), background refresh, shamir start-up."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_client.config import KeysConfig
from kms_client.errors import Sealed
from kms_client.local_root import LocalRootKey
from kms_client.opening import build_key_manager, needs_shares, open_key_manager
from kms_client.root_uri import parse_local
from tests.kms_client.support import RecordingAuditor
from tokengate.errors import ConfigError


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A short path for unix sockets (108-byte limit)."""
    path = Path(tempfile.mkdtemp(prefix="tgk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _build(tmp_path: Path, *, production: bool, **config: object) -> object:
    return build_key_manager(
        KeysConfig.model_validate(config),
        data_dir=tmp_path,
        auditor=RecordingAuditor(),
        production=production,
    )


@pytest.mark.parametrize("root", [None, "local:", "local:dev"])
def test_production_refuses_the_dev_root(tmp_path: Path, root: str | None) -> None:
    with pytest.raises(ConfigError, match="production mode refuses the development root"):
        _build(tmp_path, production=True, root=root)


def test_development_accepts_the_dev_root(tmp_path: Path) -> None:
    _build(tmp_path, production=False)


@pytest.mark.parametrize("root", ["local:env=TG_ROOT", "local:shamir", "local:passphrase-env=PW"])
def test_production_accepts_explicit_local_roots(tmp_path: Path, root: str) -> None:
    _build(tmp_path, production=True, root=root)


@pytest.mark.parametrize(
    ("store", "ok"),
    [
        ("redis://10.0.0.5:6379/0", False),
        ("rediss://10.0.0.5:6379/0", True),
        ("redis://127.0.0.1:6379/0", True),
        ("postgresql://db.internal/tg", False),
        ("postgresql://db.internal/tg?sslmode=verify-full", True),
        ("postgresql://localhost/tg", True),
    ],
)
def test_production_refuses_plaintext_remote_stores(tmp_path: Path, store: str, ok: bool) -> None:
    if ok:
        _build(tmp_path, production=True, root="local:env=X", store=store)
    else:
        with pytest.raises(ConfigError, match="production mode needs"):
            _build(tmp_path, production=True, root="local:env=X", store=store)


@pytest.mark.parametrize(
    ("url", "production", "ok"),
    [
        ("https://kms.internal:8443", True, True),
        ("http://kms.internal:8080", False, True),
        ("http://kms.internal:8080", True, False),
        ("http://127.0.0.1:8080", True, False),
    ],
)
def test_production_refuses_a_remote_root_over_plain_http(
    tmp_path: Path, url: str, production: bool, ok: bool
) -> None:
    root = f"remote:{url};credential-env=TG_KMS_CREDENTIAL"
    if ok:
        _build(tmp_path, production=production, root=root)
    else:
        with pytest.raises(ConfigError, match="refuses remote: over plain http"):
            _build(tmp_path, production=production, root=root)


async def test_background_task_picks_up_another_replica(tmp_path: Path, control_dir: Path) -> None:
    config = KeysConfig(refresh_interval=0.02, control_dir=str(control_dir))
    a = await open_key_manager(
        config, data_dir=tmp_path, auditor=RecordingAuditor(), production=False
    )
    b = await open_key_manager(
        config, data_dir=tmp_path, auditor=RecordingAuditor(), production=False
    )
    try:
        await a.rotate("tokenize")
        async with asyncio.timeout(30):  # liveness only: the task must get there eventually
            while b.primary_version("tokenize") != 2:
                await asyncio.sleep(0.01)
    finally:
        await a.close()
        await b.close()
    assert not list(control_dir.iterdir())  # sockets removed on close


async def test_failed_unseal_leaves_nothing_open(tmp_path: Path) -> None:
    config = KeysConfig(root="local:env=TG_MISSING_ROOT_VAR")
    os.environ.pop("TG_MISSING_ROOT_VAR", None)
    with pytest.raises(Exception, match="TG_MISSING_ROOT_VAR is not set"):
        await open_key_manager(
            config, data_dir=tmp_path, auditor=RecordingAuditor(), production=False
        )


async def test_shamir_root_starts_sealed(tmp_path: Path, control_dir: Path) -> None:
    table = parse_local("local:shamir", data_dir=tmp_path).table
    LocalRootKey.create_shamir(table, shares=3, threshold=2)
    config = KeysConfig(root="local:shamir", control_dir=str(control_dir))
    m = await open_key_manager(
        config, data_dir=tmp_path, auditor=RecordingAuditor(), production=True
    )
    try:
        assert m.is_sealed
        assert needs_shares(m)
        with pytest.raises(Sealed):
            m.encrypt("tokenize", b"x", context=b"")
    finally:
        await m.close()


async def test_unknown_newer_version_triggers_an_immediate_refresh(
    tmp_path: Path, control_dir: Path
) -> None:
    from kms_client.errors import DecryptionError

    config = KeysConfig(refresh_interval=3600, control_dir=str(control_dir))  # no periodic tick
    a = await open_key_manager(
        config, data_dir=tmp_path, auditor=RecordingAuditor(), production=False
    )
    b = await open_key_manager(
        config, data_dir=tmp_path, auditor=RecordingAuditor(), production=False
    )
    try:
        await a.rotate("mfa-secrets")
        ct = a.encrypt("mfa-secrets", b"new", context=b"c")
        old = a.decrypt("mfa-secrets", a.encrypt("mfa-secrets", b"x", context=b"c"), context=b"c")
        assert old == b"x"
        with pytest.raises(DecryptionError):  # fails closed once...
            b.decrypt("mfa-secrets", ct, context=b"c")
        async with asyncio.timeout(30):  # ...and b refreshes right away, not in an hour
            while b.primary_version("mfa-secrets") != 2:
                await asyncio.sleep(0.01)
        assert b.decrypt("mfa-secrets", ct, context=b"c") == b"new"
    finally:
        await a.close()
        await b.close()
