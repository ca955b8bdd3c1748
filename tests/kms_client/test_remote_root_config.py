"""The remote: root URI grammar and the credential sources it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_client.errors import RootError, RootUnavailable
from kms_client.remote_root_config import RemoteRootConfig
from tokengate.errors import ConfigError


def test_a_full_uri_parses() -> None:
    cfg = RemoteRootConfig.from_uri(
        "remote:https://kms.internal:8443/base/;ca=/etc/ca.pem;cert=/c.pem;key=/k.pem"
        ";credential-env=TG_KMS;timeout=2.5;connect-timeout=1"
    )
    assert cfg == RemoteRootConfig(
        url="https://kms.internal:8443/base",
        credential_env="TG_KMS",
        ca=Path("/etc/ca.pem"),
        cert=Path("/c.pem"),
        key=Path("/k.pem"),
        timeout=2.5,
        connect_timeout=1.0,
    )
    assert cfg.description == "remote:https://kms.internal:8443/base"
    assert not cfg.plaintext


def test_defaults_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = RemoteRootConfig.from_uri("remote:http://127.0.0.1:9000;credential-file=cred")
    assert cfg.credential_file == tmp_path / "cred"
    assert (cfg.timeout, cfg.connect_timeout, cfg.ca) == (10.0, 5.0, None)
    assert cfg.plaintext


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("remote:", "needs an https:// URL"),
        ("remote:kms.internal;credential-env=X", "needs an https:// URL"),
        ("remote:ftp://kms;credential-env=X", "needs an https:// URL"),
        ("remote:https://u:p@kms;credential-env=X", "no user info"),
        ("remote:https://kms?x=1;credential-env=X", "no user info, query"),
        ("remote:https://kms:99999;credential-env=X", "invalid port"),
        ("remote:https://kms", "exactly one of credential-env"),
        ("remote:https://kms;credential-env=X;credential-file=/f", "exactly one of"),
        ("remote:https://kms;credential-env=1X", "must name an environment variable"),
        ("remote:https://kms;credential-env=X;credential-env=Y", "given twice"),
        ("remote:https://kms;credential-env=X;password=x", "unknown part 'password'"),
        ("remote:https://kms;credential-env", "needs '=value'"),
        ("remote:https://kms;credential-env=X;cert=/c.pem", "go together"),
        ("remote:http://kms;credential-env=X;ca=/ca.pem", "need an https:// URL"),
        ("remote:https://kms;credential-env=X;timeout=0", "must be in"),
        ("remote:https://kms;credential-env=X;timeout=301", "must be in"),
        ("remote:https://kms;credential-env=X;connect-timeout=soon", "number of seconds"),
    ],
)
def test_bad_uris_are_config_errors(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RemoteRootConfig.from_uri(uri)


def test_the_credential_comes_from_the_variable() -> None:
    cfg = RemoteRootConfig.from_uri("remote:https://kms;credential-env=TG_KMS")
    assert cfg.read_credential({"TG_KMS": " tgk_abc \n"}) == "tgk_abc"
    with pytest.raises(RootUnavailable, match="TG_KMS is not set"):
        cfg.read_credential({})
    with pytest.raises(RootError, match="does not hold a credential") as info:
        cfg.read_credential({"TG_KMS": "tgk_a\r\nX-Injected: 1"})
    assert "Injected" not in str(info.value)


def test_the_credential_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "cred"
    cfg = RemoteRootConfig.from_uri(f"remote:https://kms;credential-file={path}")
    with pytest.raises(RootUnavailable, match="does not exist"):
        cfg.read_credential()
    path.write_text("tgk_secretvalue\n")
    path.chmod(0o644)
    with pytest.raises(RootError, match="readable by others") as info:
        cfg.read_credential()
    assert "secretvalue" not in str(info.value)
    path.chmod(0o600)
    assert cfg.read_credential() == "tgk_secretvalue"
