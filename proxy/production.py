"""``mode: production``: every insecure default becomes a start-up error.

Development keeps the embedded defaults that make ``tokengate demo`` work on a
bare machine. Production refuses each of them with a message that says what
to configure instead. Later capabilities (keys, sessions, vault, TEE) add
their own rules here.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit

from kms_client import check_keys_config
from proxy.settings import Settings
from proxy.teeconfig import TeeConfig
from proxy.tokenization import TokenizationConfig
from tokengate.errors import GatewayError
from vault.opening import insecure_reasons

_LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain"))


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine only (the sidecar case)."""
    if not host or host in _LOOPBACK_NAMES:
        return bool(host)
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _postgres_is_protected(dsn: str) -> bool:
    """TLS with certificate verification, or a local socket / loopback."""
    parts = urlsplit(dsn)
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        host = parts.hostname or (query.get("host", [""])[0])
        mode = query.get("sslmode", [""])[0]
    else:  # key=value libpq string
        pairs = dict(p.split("=", 1) for p in dsn.split() if "=" in p)
        host, mode = pairs.get("host", ""), pairs.get("sslmode", "")
    if not host or host.startswith("/") or is_loopback(host):
        return True
    return mode == "verify-full"


def _rate_limit_problems(config: TokenizationConfig) -> list[str]:
    uri = config.rate_limits
    if uri.startswith("memory:"):
        return ["tokenization.rate_limits: memory: counts per process; use sqlite: or rediss://"]
    if uri.startswith("redis://") and not is_loopback(urlsplit(uri).hostname):
        return ["tokenization.rate_limits: plain-text Redis to another host; use rediss://"]
    return []


def _tee_problems(config: TeeConfig | None) -> list[str]:
    if config is None:
        return []
    problems = []
    if config.insecure_simulated_tee:
        problems.append(
            "tee.insecure_simulated_tee: a simulated TEE proves nothing; production accepts "
            "only hardware attestation"
        )
    if config.kms.plaintext:
        problems.append("tee.kms.url: plain HTTP to the KMS; use https://")
    return problems


def production_problems(settings: Settings) -> list[str]:
    """Every insecure default still in use; empty when the config is fit for production."""
    gw = settings.gateway
    problems: list[str] = []
    where = settings.config_path.name
    if not is_loopback(gw.listen.host) and gw.listen.tls is None and not gw.trusted_proxies:
        problems.append(
            f"{where}: listen: plain HTTP on a non-loopback address; configure listen.tls, "
            "or trusted_proxies for the TLS-terminating ingress in front"
        )
    for name, up in gw.upstreams.items():
        parts = urlsplit(up.url)
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            problems.append(
                f"{where}: upstreams.{name}.url: plain HTTP to a remote backend; use https "
                "or run the app in the same pod bound to 127.0.0.1"
            )
    try:
        check_keys_config(gw.keys, data_dir=settings.data_dir, production=True)
    except GatewayError as e:
        problems.append(f"{where}: {e}")
    problems.extend(
        f"{where}: sessions.store.{p.removeprefix('sessions.')}"
        for p in gw.sessions.store.production_problems()
    )
    if not gw.sessions.cookies.secure:
        problems.append(f"{where}: sessions.cookies.secure: session cookies must be Secure")
    problems.extend(f"{where}: {reason}" for reason in insecure_reasons(gw.vault))
    problems.extend(f"{where}: {reason}" for reason in _rate_limit_problems(gw.tokenization))
    problems.extend(f"{where}: {reason}" for reason in _tee_problems(gw.tee))
    audit = gw.audit
    if audit.postgres is None:
        problems.append(
            f"{where}: audit.postgres: production needs an independent second sink for "
            "signed checkpoints (a directory on the same disk can be rewritten with the log)"
        )
    elif not _postgres_is_protected(audit.postgres.dsn.get_secret_value()):
        problems.append(
            f"{where}: audit.postgres.dsn: remote PostgreSQL without sslmode=verify-full"
        )
    return problems
