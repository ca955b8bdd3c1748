"""KeyManager on a real PKCS#11 root (SoftHSM2): unseal, DRBG installation, shredding, errors."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from kms_client import rng
from kms_client.errors import RootAuthError, RootUnavailable, WrongRoot
from kms_client.pkcs11_root import Pkcs11RootConfig, Pkcs11RootKey
from tests.kms_client.conftest import SoftHsm
from tests.kms_client.support import RecordingAuditor, open_manager

PIN_ENV = "TG_TEST_HSM_PIN"


async def _new_root(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, token: str) -> str:
    uri = softhsm.uri(token=token, key=f"kmsmgr-{uuid.uuid4().hex[:10]}", pin_env=PIN_ENV)
    root = Pkcs11RootKey(
        Pkcs11RootConfig.from_uri(uri), create_root=True, environ={PIN_ENV: softhsm.pin}
    )
    await root.open()
    await root.close()
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    return uri


@pytest.fixture
async def hsm_uri(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh root key on the worker's main SoftHSM2 token; its URI."""
    return await _new_root(softhsm, monkeypatch, "tg-main")


@pytest.fixture
async def lockable_uri(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh root key on the token reserved for wrong-PIN tests."""
    return await _new_root(softhsm, monkeypatch, "tg-lockable")


async def test_hsm_root_unseals_installs_the_drbg_and_shreds(tmp_path: Path, hsm_uri: str) -> None:
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor, root=hsm_uri)
    try:
        assert rng.source_name().startswith("hkdf-drbg")
        assert auditor.find("keyring.unseal", result="ok")[0]["rng"] == rng.source_name()
        calls = m.root_calls
        for _ in range(200):
            m.decrypt("mfa-secrets", m.encrypt("mfa-secrets", b"x", context=b"c"), context=b"c")
        assert m.root_calls == calls
        await m.rotate("mfa-secrets")
        shutil.copy(tmp_path / "kms" / "keyring.json", tmp_path / "backup.json")
        await m.destroy("mfa-secrets", 1)
        assert m.root_calls_by_operation()["destroy_kwk"] == 1
    finally:
        await m.close()
    assert rng.source_name() == "os.urandom"
    shutil.copy(tmp_path / "backup.json", tmp_path / "kms" / "keyring.json")
    with pytest.raises(WrongRoot):
        await open_manager(tmp_path, root=hsm_uri)


async def test_wrong_pin_is_a_clear_error_and_audited(
    tmp_path: Path, lockable_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await (await open_manager(tmp_path, root=lockable_uri)).close()
    monkeypatch.setenv(PIN_ENV, "0000-wrong")
    auditor = RecordingAuditor()
    with pytest.raises(RootAuthError) as info:
        await open_manager(tmp_path, auditor, root=lockable_uri)
    assert "0000-wrong" not in str(info.value)
    (error,) = auditor.find("kms.root_error")
    assert error["operation"] == "open"
    assert error["error"] == "kms_root_auth"
    assert auditor.find("keyring.unseal", result="failed")
    assert rng.source_name() == "os.urandom"  # never a fallback to anything weaker or stale


async def test_missing_token_is_a_clear_startup_error(
    tmp_path: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    uri = softhsm.uri(token="tg-no-such-token", key="root", pin_env=PIN_ENV)
    with pytest.raises(RootUnavailable, match="tg-no-such-token"):
        await open_manager(tmp_path, root=uri)


@pytest.mark.usefixtures("aws_test_credentials")
async def test_unreachable_kms_is_a_clear_startup_error(tmp_path: Path, unused_port: int) -> None:
    auditor = RecordingAuditor()
    uri = f"aws-kms://alias/tokengate-root?region=us-east-1&endpoint=http://127.0.0.1:{unused_port}"
    with pytest.raises(RootUnavailable) as info:
        await open_manager(tmp_path, auditor, root=uri)
    assert "Traceback" not in str(info.value)
    assert auditor.find("kms.root_error")[0]["error"] == "kms_root_unavailable"
    assert not (tmp_path / "kms" / "keyring.json").exists()  # never a fallback to another root
