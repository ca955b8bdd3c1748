"""The tee: section of gateway.yaml: validation, production refusals, rules that need the pool."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from policy.errors import PolicyError
from proxy.settings import load_settings
from proxy.teeconfig import TeeConfig

KMS = {"url": "https://kms.internal:8470", "credential_env": "TG_KMS_CREDENTIAL"}
WORKER = {"id": "cards-1", "address": "unix:/run/tokengate/worker.sock"}

TEE_ROUTE = """
routes:
  - name: cards
    match: {methods: [POST], prefix: /cards}
    allow_unauthenticated: true
    tenant: acme
    request:
      - {field: $.card, action: tee, job: card_check, accept: {valid: true}, class: pan}
classes:
  pan: {format: pan, keep_last: 4}
"""
HARDENED = """
mode: production
listen: {host: 0.0.0.0, port: 8080}
trusted_proxies: [10.0.0.0/8]
upstreams:
  app: {url: "http://127.0.0.1:8000"}
audit:
  postgres: {dsn: "postgresql://audit@db.internal/audit?sslmode=verify-full"}
keys:
  root: "local:env=TOKENGATE_ROOT_KEY"
tee:
  kms: {url: "https://kms.internal:8470", credential_env: TG_KMS_CREDENTIAL}
  workers: [{id: cards-1, address: "127.0.0.1:8700"}]
"""


def test_defaults() -> None:
    config = TeeConfig.model_validate({"kms": KMS, "workers": [WORKER]})
    assert config.reattest_every == 20.0
    assert config.grant_ttl == 30
    assert config.default_tenant == "default"
    assert config.insecure_simulated_tee is False
    assert config.workers[0].address == "unix:/run/tokengate/worker.sock"
    assert not config.kms.plaintext


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": []}, "at least 1 item"),
        ({"workers": [WORKER, WORKER]}, "a worker is listed twice"),
        ({"workers": [{"id": "x", "address": "nowhere"}]}, "is not unix:/path or HOST:PORT"),
        ({"workers": [{"id": "bad id", "address": "127.0.0.1:1"}]}, "id must be"),
        ({"kms": {**KMS, "url": "ftp://kms"}}, "kms url must be https://"),
        ({"kms": {**KMS, "url": "https://u:p@kms"}}, "no user info"),
        ({"kms": {"url": "https://kms"}}, "exactly one of credential_env or credential_file"),
        ({"kms": {**KMS, "credential_file": "/k"}}, "exactly one of credential_env"),
        ({"kms": {**KMS, "credential_env": "1BAD"}}, "must name an environment variable"),
        ({"kms": {**KMS, "client_cert": "/c.pem"}}, "client_cert and client_key go together"),
        ({"kms": {**KMS, "url": "http://kms", "ca": "/ca.pem"}}, "need an https:// url"),
        ({"reattest_every": 0}, "more than 0"),
        ({"grant_ttl": 301}, "less than or equal to 300"),
        ({"default_tenant": ""}, "default_tenant must be"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
    ids=[
        "no-workers",
        "twice",
        "address",
        "id",
        "scheme",
        "userinfo",
        "no-credential",
        "two-credentials",
        "env-name",
        "half-mtls",
        "ca-on-http",
        "reattest-zero",
        "ttl-too-long",
        "tenant",
        "unknown-key",
    ],
)
def test_bad_settings_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TeeConfig.model_validate({"kms": KMS, "workers": [WORKER], **change})


def load(tmp_path: Path, gateway: str, routes: str = TEE_ROUTE) -> None:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "r.yaml").write_text(textwrap.dedent(routes))
    (tmp_path / "gateway.yaml").write_text(textwrap.dedent(gateway))
    load_settings(tmp_path / "gateway.yaml")


def test_a_hardened_tee_config_loads_in_production(tmp_path: Path) -> None:
    load(tmp_path, HARDENED)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("workers: [", "insecure_simulated_tee: true\n  workers: ["),
            "tee.insecure_simulated_tee: a simulated TEE proves nothing",
        ),
        (("https://kms.internal", "http://kms.internal"), "tee.kms.url: plain HTTP to the KMS"),
    ],
    ids=["sim", "http"],
)
def test_production_refuses_the_simulated_tee_and_plain_http(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    changed = HARDENED.replace(*change)
    with pytest.raises(PolicyError, match=problem):
        load(tmp_path, changed)
    load(tmp_path, changed.replace("mode: production", "mode: development"))


def test_development_accepts_the_simulated_tee_over_http(tmp_path: Path) -> None:
    dev = HARDENED.replace("mode: production", "mode: development").replace(
        "workers: [", "insecure_simulated_tee: true\n  workers: ["
    )
    load(tmp_path, dev.replace("https://kms.internal", "http://127.0.0.1"))


def test_a_tee_rule_without_a_tee_section_is_refused_at_load(tmp_path: Path) -> None:
    gateway = "upstreams:\n  app: {url: 'http://127.0.0.1:8000'}\n"
    with pytest.raises(PolicyError, match=r"route .cards. uses the tee action, but gateway\.yaml"):
        load(tmp_path, gateway)
    plain = TEE_ROUTE.replace(
        "action: tee, job: card_check, accept: {valid: true},", "action: tokenize,"
    )
    load(tmp_path, gateway, plain)
