"""kms.config, kms.credentials and kms.production: kms.yaml validated once, production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kms.auth import credential_digest, new_credential
from kms.config import GRANT_PURPOSE, load_kms_config
from kms.credentials import load_credentials
from kms.production import production_problems
from kms.root_service import ROOT_PURPOSE
from policy.errors import PolicyError


def write(tmp: Path, doc: object, name: str = "kms.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_defaults_and_resolved_paths(tmp_path: Path) -> None:
    settings = load_kms_config(write(tmp_path, {}))
    cfg = settings.config
    assert settings.data_dir == tmp_path / "kms-data"
    assert settings.credentials_path == tmp_path / "kms-credentials.yaml"
    assert settings.sim_key_path == tmp_path / "kms-data" / "tee" / "sim-attestation.key"
    assert cfg.store == "sqlite:kms/kms.db"
    assert (cfg.listen.host, cfg.listen.port, cfg.listen.tls) == ("127.0.0.1", 8470, None)
    assert not cfg.insecure_simulated_tee
    assert not settings.production
    purposes = cfg.keys_for_kms().purposes
    assert purposes[GRANT_PURPOSE].kind == "aead"
    assert purposes[ROOT_PURPOSE].kind == "aead"
    assert cfg.keys_for_kms().purpose_settings()[GRANT_PURPOSE].kind.value == "aead"
    # a worker attests (two calls) about every 20 s: far below one peer's limit
    assert (cfg.broker.unauthenticated_rate, cfg.broker.burst) == (1.0, 30)


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"listen": {"port": 70000}}, "listen.port"),
        ({"mode": "prod"}, "mode"),
        ({"broker": {"default_grant_ttl": 600, "max_grant_ttl": 300}}, "broker"),
        ({"store_schema": "Bad-Schema"}, "store_schema"),
        ({"unknown": 1}, "unknown"),
        ({"listen": {"tls": {"cert": "c.pem"}}}, "listen.tls.key"),
        ({"broker": {"unauthenticated_rate": 0}}, "broker.unauthenticated_rate"),
        ({"broker": {"burst": 0}}, "broker.burst"),
        ({"broker": {"throttle_peers": 1}}, "broker.throttle_peers"),
    ],
    ids=["port", "mode", "ttls", "schema", "unknown", "tls-key", "rate", "burst", "peers"],
)
def test_bad_configs_name_the_path(tmp_path: Path, doc: dict[str, object], where: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_kms_config(write(tmp_path, doc))
    assert any(f"kms.yaml: {where}" in p for p in info.value.problems), info.value.problems


def test_credentials_file(tmp_path: Path) -> None:
    secret = new_credential()
    path = write(
        tmp_path,
        {"credentials": [{"id": "gw", "roles": ["gateway"], "sha256": credential_digest(secret)}]},
        "creds.yaml",
    )
    table = load_credentials(path).table()
    caller = table.lookup(secret)
    assert caller is not None
    assert caller.roles == frozenset({"gateway"})


@pytest.mark.parametrize(
    "entries",
    [
        [{"id": "gw", "roles": ["root"], "sha256": "a" * 64}],
        [{"id": "gw", "roles": [], "sha256": "a" * 64}],
        [{"id": "gw", "roles": ["admin"], "sha256": "xyz"}],
        [{"id": "gw", "roles": ["admin"], "sha256": "a" * 64, "secret": "s"}],
        [
            {"id": "gw", "roles": ["admin"], "sha256": "a" * 64},
            {"id": "gw", "roles": ["admin"], "sha256": "b" * 64},
        ],
        [
            {"id": "a", "roles": ["admin"], "sha256": "a" * 64},
            {"id": "b", "roles": ["admin"], "sha256": "a" * 64},
        ],
    ],
    ids=["role", "no-role", "digest", "secret-field", "dup-id", "dup-digest"],
)
def test_bad_credentials_files(tmp_path: Path, entries: list[dict[str, object]]) -> None:
    with pytest.raises(PolicyError):
        load_credentials(write(tmp_path, {"credentials": entries}, "creds.yaml"))


def test_production_problems(tmp_path: Path) -> None:
    insecure = load_kms_config(
        write(
            tmp_path,
            {
                "mode": "production",
                "insecure_simulated_tee": True,
                "store": "postgresql://kms@db.example/kms",
            },
        )
    )
    problems = "\n".join(production_problems(insecure, credentials=0))
    for word in (
        "listen.tls",
        "insecure_simulated_tee",
        "keys.root",
        "store:",
        "audit.postgres",
        "credentials",
    ):
        assert word in problems

    secure = load_kms_config(
        write(
            tmp_path,
            {
                "mode": "production",
                "listen": {"host": "0.0.0.0", "tls": {"cert": "c.pem", "key": "k.pem"}},
                "keys": {"root": "aws-kms://arn:aws:kms:eu-west-1:111122223333:key/abc"},
                "store": "postgresql://kms@db.example/kms?sslmode=verify-full",
                "audit": {"postgres": {"dsn": "postgresql://a@127.0.0.1/audit"}},
            },
        )
    )
    assert production_problems(secure, credentials=1) == []
