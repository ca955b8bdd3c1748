"""Root backend selection by URI, local: grammar, and the refused schemes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_client.local_root import LocalRootKey
from kms_client.root_uri import open_root, parse_local
from tokengate.errors import ConfigError


@pytest.mark.parametrize(
    ("uri", "source", "location"),
    [
        ("local:", "dev", "{d}/kms/root.key"),
        ("local:dev", "dev", "{d}/kms/root.key"),
        ("local:file=/etc/tg/root.key", "file", "/etc/tg/root.key"),
        ("local:env=TG_ROOT", "env", "TG_ROOT"),
        ("local:passphrase-env=PW", "passphrase-env", "PW"),
        ("local:passphrase-file=/run/pw", "passphrase-file", "/run/pw"),
        ("local:shamir", "shamir", ""),
        ("local:env=TG_ROOT;table=/var/kms/t.json", "env", "TG_ROOT"),
    ],
)
def test_local_grammar(tmp_path: Path, uri: str, source: str, location: str) -> None:
    spec = parse_local(uri, data_dir=tmp_path)
    assert spec.source == source
    assert spec.location == location.format(d=tmp_path.absolute())
    expected_table = (
        Path("/var/kms/t.json") if "table=" in uri else tmp_path.absolute() / "kms/root-kwks.json"
    )
    assert spec.table == expected_table


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("local:file=", "needs a value"),
        ("local:file", "needs '=value'"),
        ("local:env=A;env=B", "given twice"),
        ("local:env=A;file=/b", "exactly one source"),
        ("local:hsm=1", "unknown local source 'hsm'"),
        ("local:dev;env=A", "takes no other source"),
    ],
)
def test_local_grammar_errors(tmp_path: Path, uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_local(uri, data_dir=tmp_path)


def test_local_uri_builds_a_local_root(tmp_path: Path) -> None:
    assert isinstance(open_root("local:env=X", data_dir=tmp_path), LocalRootKey)


def test_pkcs11_and_aws_uris_build_their_backends(tmp_path: Path) -> None:
    from kms_client.aws_kms_root import AwsKmsRootKey
    from kms_client.pkcs11_root import Pkcs11RootKey

    p11 = open_root(
        "pkcs11:token=tg;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-env=PIN",
        data_dir=tmp_path,
    )
    assert isinstance(p11, Pkcs11RootKey)
    aws = open_root("aws-kms://alias/tokengate-root?region=eu-west-1", data_dir=tmp_path)
    assert isinstance(aws, AwsKmsRootKey)


def test_remote_uris_build_the_kms_backend(tmp_path: Path) -> None:
    from kms_client.remote_root import RemoteRootKey

    root = open_root("remote:https://kms.internal;credential-env=TG_KMS", data_dir=tmp_path)
    assert isinstance(root, RemoteRootKey)
    assert root.description == "remote:https://kms.internal"
    with pytest.raises(ConfigError, match="credential"):
        open_root("remote:https://kms.internal", data_dir=tmp_path)


@pytest.mark.parametrize("uri", ["vault://x", "root.key", "", "file:/root.key"])
def test_unknown_schemes_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(ConfigError, match="unknown root scheme"):
        open_root(uri, data_dir=tmp_path)
