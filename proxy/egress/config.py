"""The ``egress:`` section of gateway.yaml: the relay's listener, clients, CA and upstream trust.

Rules:
- The relay listens on loopback unless ``listen.allow_remote_clients`` says
  otherwise: it releases plaintext, so reaching it from the network must be
  a decision, never a default.
- Clients are listed by name, roles and the hex SHA-256 of their secret
  (``tokengate egress client create`` prints a secret once and the line to
  paste here); the secret itself is never in the file. Names appear in the
  audit log as the subject ``egress:<name>``.
- ``unlisted_hosts`` says what happens to a CONNECT to a host no egress
  route names: ``refuse`` (403, the default) or ``tunnel`` (bytes pass
  untouched: no TLS interception, no field rules, nothing released).
- Third parties' certificates are verified against ``upstream_ca`` or, when
  it is not set, the system's trust store; there is no switch to skip it.
- ``admin`` opens a second listener for probes and Prometheus metrics
  (loopback by default); without it the relay serves none.
- Egress routes live in their own policy files (``policies`` globs, relative
  to gateway.yaml), so the gateway never loads them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, model_validator

from policy.types import Bytes, StrictModel

CLIENT_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class EgressListen(StrictModel):
    """Where the backend reaches the relay (its HTTPS_PROXY)."""

    host: str = Field("127.0.0.1", description="address to bind; loopback unless allowed below")
    port: int = Field(8090, ge=0, le=65535, description="TCP port")
    allow_remote_clients: bool = Field(
        False, description="allow a non-loopback bind address (the relay releases plaintext)"
    )

    @model_validator(mode="after")
    def _loopback(self) -> EgressListen:
        if not self.allow_remote_clients and not is_loopback(self.host):
            raise ValueError(
                f"egress.listen.host '{self.host}' is not a loopback address: set "
                "allow_remote_clients: true to let clients beyond this host reach the relay"
            )
        return self


class EgressAdmin(StrictModel):
    """The relay's admin listener: /.tokengate/healthz, /.tokengate/readyz, /.tokengate/metrics."""

    host: str = Field("127.0.0.1", description="address to bind; keep it private")
    port: int = Field(8091, ge=0, le=65535, description="TCP port")


class EgressClient(StrictModel):
    """One client of the relay: who it is, its roles, the SHA-256 of its secret."""

    name: str = Field(pattern=CLIENT_NAME, description="client name, as the audit log shows it")
    roles: list[str] = Field(
        default_factory=list, description="roles detokenize allow rules can require"
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="hex SHA-256 of the client's secret (from 'egress client create')",
    )


class EgressConfig(StrictModel):
    """The egress relay (``tokengate egress serve``)."""

    listen: EgressListen = Field(default_factory=EgressListen, description="proxy listener")
    admin: EgressAdmin | None = Field(
        None, description="health, readiness and metrics listener (none: not served)"
    )
    clients: list[EgressClient] = Field(
        default_factory=list, description="clients allowed to call through the relay"
    )
    policies: list[str] = Field(["egress/*.yaml"], description="egress policy file globs")
    unlisted_hosts: Literal["refuse", "tunnel"] = Field(
        "refuse",
        description="CONNECT to a host no egress route names: refuse (403) or tunnel untouched",
    )
    upstream_ca: Path | None = Field(
        None, description="CA bundle that verifies third parties (default: the system store)"
    )
    max_body: Bytes = Field(
        ByteSize(10 * 1024 * 1024),
        description="largest request or response body the relay buffers (413/502 above)",
    )
    ca_common_name: str = Field(
        "tokengate egress relay CA",
        min_length=1,
        max_length=64,
        description="common name of the relay's CA certificate, made on first start",
    )

    @model_validator(mode="after")
    def _unique_clients(self) -> EgressConfig:
        names = [c.name for c in self.clients]
        if len(set(names)) != len(names):
            raise ValueError("egress.clients: two clients have the same name")
        digests = [c.sha256 for c in self.clients]
        if len(set(digests)) != len(digests):
            raise ValueError("egress.clients: the same secret is listed twice")
        return self


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
