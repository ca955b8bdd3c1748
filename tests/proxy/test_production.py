"""mode: production refuses each insecure default, and accepts a hardened config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from policy.errors import PolicyError
from proxy.settings import load_settings

ROUTES = "routes:\n  - name: all\n    match: {prefix: /}\n    allow_unauthenticated: true\n"
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
"""


def load(tmp_path: Path, text: str) -> None:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "r.yaml").write_text(ROUTES)
    (tmp_path / "gateway.yaml").write_text(textwrap.dedent(text))
    load_settings(tmp_path / "gateway.yaml")


def test_hardened_config_loads(tmp_path: Path) -> None:
    load(tmp_path, HARDENED)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("trusted_proxies: [10.0.0.0/8]", "trusted_proxies: []"),
            "listen: plain HTTP on a non-loopback",
        ),
        (
            ('url: "http://127.0.0.1:8000"', 'url: "http://app.internal:8000"'),
            "upstreams.app.url: plain HTTP",
        ),
        (("sslmode=verify-full", "sslmode=require"), "audit.postgres.dsn: remote PostgreSQL"),
        (
            ('keys:\n  root: "local:env=TOKENGATE_ROOT_KEY"\n', ""),
            "production mode refuses the development root",
        ),
        (
            (
                'audit:\n  postgres: {dsn: "postgresql://audit@db.internal/audit?sslmode=verify-full"}',
                "",
            ),
            "audit.postgres: production needs an independent second sink",
        ),
        (
            ("keys:\n", "vault: {url: 'redis://vault.internal:6379/0'}\nkeys:\n"),
            "vault.url: plain-text Redis to another host",
        ),
        (
            ("keys:\n", "vault: {accept_volatile: true}\nkeys:\n"),
            "vault.accept_volatile: records may be lost",
        ),
        (
            ("keys:\n", "tokenization: {rate_limits: 'memory:'}\nkeys:\n"),
            "tokenization.rate_limits: memory: counts per process",
        ),
        (
            ("keys:\n", "tokenization: {rate_limits: 'redis://rl.internal/0'}\nkeys:\n"),
            "tokenization.rate_limits: plain-text Redis",
        ),
    ],
)
def test_each_insecure_default_is_refused(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    text = HARDENED.replace(*change)
    assert text != HARDENED
    with pytest.raises(PolicyError) as info:
        load(tmp_path, text)
    assert any(problem in p for p in info.value.problems), info.value.problems
    # The same config is fine for development.
    load(tmp_path, text.replace("mode: production", "mode: development"))


def test_https_upstream_and_local_postgres_are_fine(tmp_path: Path) -> None:
    text = HARDENED.replace('"http://127.0.0.1:8000"', '"https://app.internal"').replace(
        "db.internal/audit?sslmode=verify-full", "127.0.0.1/audit"
    )
    load(tmp_path, text)
