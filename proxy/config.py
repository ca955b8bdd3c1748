"""The gateway file model: ``gateway.yaml``.

Listeners, upstreams, limits, trusted proxies, where policies live, and the
sections of the other packages (audit, keys). Paths are relative to the
directory of gateway.yaml. ``mode: production`` turns insecure defaults into
start-up errors (see :mod:`proxy.production`).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ByteSize, Field, field_validator, model_validator

from audit.config import AuditConfig
from kms_client.config import KeysConfig
from policy.types import Bytes, Duration, StrictModel
from proxy.adminapi.config import AdminApiConfig
from proxy.authn.config import SessionsConfig
from proxy.egress.config import EgressConfig
from proxy.teeconfig import TeeConfig
from proxy.tokenization import TokenizationConfig
from vault.config import VaultConfig

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TlsFiles(StrictModel):
    """A certificate chain and its private key (PEM files)."""

    cert: Path = Field(description="PEM certificate chain")
    key: Path = Field(description="PEM private key")


class Listener(StrictModel):
    """The public listener browsers reach."""

    host: str = Field("127.0.0.1", description="address to bind")
    port: int = Field(8080, ge=0, le=65535, description="TCP port")
    tls: TlsFiles | None = Field(None, description="serve HTTPS with these files")


class AdminListener(StrictModel):
    """The separate admin listener: health, readiness, metrics."""

    host: str = Field("127.0.0.1", description="address to bind; keep it private")
    port: int = Field(8081, ge=0, le=65535, description="TCP port")
    api: AdminApiConfig = Field(
        default_factory=AdminApiConfig, description="session administration API and its keys"
    )


class UpstreamTls(StrictModel):
    """How the gateway verifies an HTTPS upstream and proves itself to it."""

    ca: Path | None = Field(
        None, description="CA bundle to verify the upstream (default: system store)"
    )
    client_cert: TlsFiles | None = Field(None, description="client certificate for mTLS")
    server_name: str | None = Field(
        None, description="expected TLS server name, if not the URL host"
    )


class Upstream(StrictModel):
    """A backend the gateway forwards to."""

    url: str = Field(description="http:// or https:// base URL of the backend")
    connect_timeout: Duration = Field(5.0, description="time to open a connection")
    read_timeout: Duration = Field(60.0, description="longest silence while reading the response")
    max_connections: int = Field(512, ge=1, description="pooled keep-alive connections, at most")
    audience: str | None = Field(
        None, description="aud of the identity tokens sent to this upstream; default: its name"
    )
    tls: UpstreamTls = Field(default_factory=UpstreamTls, description="TLS settings for https URLs")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("upstream url must be http:// or https:// with a host")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("upstream url cannot carry a query, fragment or credentials")
        return v.rstrip("/")


class Limits(StrictModel):
    """Request limits enforced before any handler work."""

    max_body: Bytes = Field(
        ByteSize(10 * 1024 * 1024), description="default request body limit (413 above)"
    )
    max_header_bytes: int = Field(8190, ge=1024, description="longest header field (431 above)")
    max_request_line: int = Field(8190, ge=256, description="longest request line")


class Reload(StrictModel):
    """Hot reload of gateway.yaml and policies."""

    watch: bool = Field(True, description="reload when a config file changes")
    interval: Duration = Field(2.0, description="how often files are checked")


class Logging(StrictModel):
    """Log output: JSON lines on stderr."""

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    access_log: bool = Field(True, description="one JSON line per request")


class GatewayConfig(StrictModel):
    """The gateway file: listeners, upstreams, limits, and each package's section."""

    mode: Literal["development", "production"] = Field(
        "development", description="production turns insecure defaults into start-up errors"
    )
    listen: Listener = Field(default_factory=Listener, description="public listener")
    admin: AdminListener = Field(default_factory=AdminListener, description="admin listener")
    workers: int = Field(0, ge=0, le=256, description="worker processes; 0 = one per CPU")
    drain_timeout: Duration = Field(
        30.0, description="SIGTERM waits this long for in-flight requests"
    )
    data_dir: Path = Field(Path("data"), description="state directory (stores, keys, audit)")
    trusted_proxies: list[IPNetwork] = Field(
        default_factory=list, description="peers whose X-Forwarded-*/Forwarded headers are kept"
    )
    upstreams: dict[str, Upstream] = Field(description="backends by name")
    default_upstream: str | None = Field(None, description="upstream of routes that name none")
    policies: list[str] = Field(["policies/*.yaml"], description="policy file globs")
    limits: Limits = Field(default_factory=Limits, description="request limits")
    reload: Reload = Field(default_factory=Reload, description="hot reload")
    logging: Logging = Field(default_factory=Logging, description="logging")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="tamper-evident audit log")
    sessions: SessionsConfig = Field(
        default_factory=SessionsConfig, description="gateway-owned sessions and login"
    )
    keys: KeysConfig = Field(
        default_factory=KeysConfig, description="key management: root, keyring store, rotation"
    )
    vault: VaultConfig = Field(
        default_factory=VaultConfig, description="the token vault's store (records, TTLs)"
    )
    tokenization: TokenizationConfig = Field(
        default_factory=TokenizationConfig,
        description="field rules: detokenize rate limits, untagged token index version",
    )
    egress: EgressConfig = Field(
        default_factory=EgressConfig,
        description="the egress relay (tokengate egress serve): listener, clients, trust",
    )
    tee: TeeConfig | None = Field(
        None, description="the attested TEE pool the tee action sends jobs to (none: no pool)"
    )

    @model_validator(mode="after")
    def _upstreams(self) -> GatewayConfig:
        if not self.upstreams:
            raise ValueError("declare at least one upstream")
        if self.default_upstream is not None and self.default_upstream not in self.upstreams:
            raise ValueError(
                f"default_upstream '{self.default_upstream}' is not a declared upstream"
            )
        return self

    def upstream_for(self, name: str | None) -> str | None:
        """The upstream name a route uses: its own, the default, or the only one."""
        if name is not None:
            return name if name in self.upstreams else None
        if self.default_upstream is not None:
            return self.default_upstream
        return next(iter(self.upstreams)) if len(self.upstreams) == 1 else None
