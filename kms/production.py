"""``mode: production`` for the KMS: every insecure default becomes a start-up error.

The same rules as the gateway's (:mod:`proxy.production`) where they overlap,
plus the KMS's own: no plain HTTP at all (the KMS is reached over the network
by gateways and workers, never as a sidecar), no simulated TEE, no empty
credentials file.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, urlsplit

from kms.config import KmsSettings
from kms_client import check_keys_config
from tokengate.errors import GatewayError


def production_problems(settings: KmsSettings, *, credentials: int) -> list[str]:
    """Every insecure setting still in use; empty when fit for production (no IO)."""
    cfg = settings.config
    where = settings.config_path.name
    problems: list[str] = []
    if cfg.listen.tls is None:
        problems.append(f"{where}: listen.tls: production refuses plain HTTP; configure TLS")
    if cfg.insecure_simulated_tee:
        problems.append(
            f"{where}: insecure_simulated_tee: a simulated TEE proves nothing; production"
            " accepts only hardware attestation"
        )
    try:
        check_keys_config(cfg.keys, data_dir=settings.data_dir, production=True)
    except GatewayError as e:
        problems.append(f"{where}: {e}")
    if not _postgres_protected(cfg.store):
        problems.append(f"{where}: store: remote PostgreSQL without sslmode=verify-full")
    if cfg.audit.postgres is None:
        problems.append(
            f"{where}: audit.postgres: production needs an independent second sink for"
            " signed checkpoints"
        )
    elif not _postgres_protected(cfg.audit.postgres.dsn.get_secret_value()):
        problems.append(
            f"{where}: audit.postgres.dsn: remote PostgreSQL without sslmode=verify-full"
        )
    if credentials == 0:
        problems.append(f"{where}: credentials: no credential is configured")
    return problems


def _postgres_protected(uri: str) -> bool:
    """Not PostgreSQL, a local socket or loopback, or TLS with certificate verification."""
    parts = urlsplit(uri)
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        host = parts.hostname or query.get("host", [""])[0]
        mode = query.get("sslmode", [""])[0]
    elif "=" in uri:  # key=value libpq string
        pairs = dict(p.split("=", 1) for p in uri.split() if "=" in p)
        host, mode = pairs.get("host", ""), pairs.get("sslmode", "")
    else:
        return True
    if not host or host.startswith("/") or _is_loopback(host):
        return True
    return mode == "verify-full"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
