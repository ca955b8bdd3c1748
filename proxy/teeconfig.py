"""The ``tee:`` section of gateway.yaml: the TEE pool, its KMS and the workers it keeps attested.

Without the section the gateway has no pool and a rule using the ``tee``
action fails closed (503). Rules:
- ``kms.url`` is the KMS service (``tokengate kms serve``); the gateway reads
  the registry there and asks it for grants and revocations with a
  credential of role ``gateway`` from ``credential_env`` or
  ``credential_file`` (exactly one). ``mode: production`` refuses ``http://``.
- ``workers`` are ``{id, address}``: ``id`` is the TEE's registry id (several
  workers may share one), ``address`` is ``unix:/path`` or ``HOST:PORT``.
  Envelopes are end-to-end encrypted to each worker's attested key, so the
  worker link needs no TLS of its own.
- ``reattest_every`` must stay below the workers' key grace (30 s by
  default): every attestation by any gateway process rotates a worker's key,
  and the key a process holds must stay valid until it re-attests.
- ``insecure_simulated_tee`` accepts the simulated platform, verified with
  ``sim_key`` (its PEM public or private key, relative to the data dir);
  ``mode: production`` refuses it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from policy.types import Duration, StrictModel
from tee.address import WorkerAddress
from tokengate.errors import ConfigError

_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_TEE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")


class TeeKms(StrictModel):
    """How the gateway reaches the KMS service and proves itself to it."""

    url: str = Field(
        description="base URL of the KMS service: https://host:port (http:// only in development)"
    )
    credential_env: str | None = Field(
        None, description="environment variable holding the gateway's KMS credential"
    )
    credential_file: Path | None = Field(
        None, description="file (mode 0600) holding the gateway's KMS credential"
    )
    ca: Path | None = Field(None, description="PEM CA bundle that signs the KMS's certificate")
    client_cert: Path | None = Field(None, description="PEM client certificate for mTLS")
    client_key: Path | None = Field(None, description="PEM private key of client_cert")
    timeout: Duration = Field(10.0, description="longest a KMS call may take before failing closed")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("kms url must be https:// (or http:// in development) with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("kms url takes no user info, query or fragment")
        return v.rstrip("/")

    @field_validator("credential_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV.match(v):
            raise ValueError("credential_env must name an environment variable")
        return v

    @model_validator(mode="after")
    def _credential(self) -> TeeKms:
        if (self.credential_env is None) == (self.credential_file is None):
            raise ValueError("name exactly one of credential_env or credential_file")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mTLS)")
        if self.url.startswith("http://") and (self.ca or self.client_cert):
            raise ValueError("ca and client_cert need an https:// url")
        return self

    @property
    def plaintext(self) -> bool:
        """True for ``http://``: refused in production."""
        return self.url.startswith("http://")


class TeeWorkerConfig(StrictModel):
    """One worker the pool keeps attested."""

    id: str = Field(description="the TEE's id in the KMS registry")
    address: str = Field(description="where the worker listens: unix:/path or HOST:PORT")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _TEE_ID.match(v):
            raise ValueError("id must be 1-64 of A-Z a-z 0-9 _ . - starting alphanumeric")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        try:
            return str(WorkerAddress.parse(v))
        except ConfigError as e:
            raise ValueError(str(e).removeprefix("tee: ")) from None


class TeeConfig(StrictModel):
    """The TEE pool: where its KMS is, which workers it attests, how often, and job limits."""

    kms: TeeKms = Field(description="the KMS service: registry, grants, revocation")
    workers: list[TeeWorkerConfig] = Field(
        min_length=1, description="workers to keep attested (jobs go round robin)"
    )
    reattest_every: Duration = Field(
        20.0, description="re-attest each worker this often; keep it below the workers' key grace"
    )
    retry_every: Duration = Field(5.0, description="retry a worker out of rotation this often")
    attest_timeout: Duration = Field(10.0, description="longest one attestation may take")
    job_timeout: Duration = Field(30.0, description="longest one job (grant + worker) may take")
    grant_ttl: int = Field(
        30, ge=1, le=300, description="seconds a job's one-time key stays releasable"
    )
    default_tenant: str = Field(
        "default", description="tenant of jobs for messages without one (the registry must list it)"
    )
    insecure_simulated_tee: bool = Field(
        False,
        description="accept the simulated TEE (no hardware guarantee; refused in production)",
    )
    sim_key: Path = Field(
        Path("tee/sim-attestation.key"),
        description="PEM Ed25519 key (public or private) of simulated evidence, under the data dir",
    )

    @field_validator("reattest_every", "retry_every", "attest_timeout", "job_timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not 0 < v <= 3600:
            raise ValueError("must be more than 0 and at most 1h")
        return v

    @field_validator("default_tenant")
    @classmethod
    def _tenant(cls, v: str) -> str:
        if not _TENANT.match(v):
            raise ValueError("default_tenant must be 1-128 of A-Z a-z 0-9 _ . : @ / -")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> TeeConfig:
        seen = [(w.id, w.address) for w in self.workers]
        if len(set(seen)) != len(seen):
            raise ValueError("a worker is listed twice")
        return self
