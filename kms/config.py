"""kms.yaml: the KMS service's configuration, validated once at start-up.

Relative paths are resolved against the config file's directory (``data_dir``,
``credentials``) or against ``data_dir`` (TLS files excepted: config dir).
``keys:`` and ``audit:`` are the gateway's own sections (:class:`KeysConfig`,
:class:`AuditConfig`): the KMS opens its keyring and its audit log exactly as
the gateway does. ``mode: production`` turns insecure defaults into start-up
errors (:mod:`kms.production`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audit.config import AuditConfig
from kms.root_service import ROOT_PURPOSE
from kms_client.config import KeysConfig, PurposeConfig
from policy.yamlio import load_model

GRANT_PURPOSE = "kms-grants"
"""The keyring purpose (aead) that seals each grant's K2 at rest."""
KMS_PURPOSES = (GRANT_PURPOSE, ROOT_PURPOSE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """HTTPS for the KMS listener; with ``client_ca`` clients must present a certificate."""

    cert: Path = Field(description="PEM certificate chain of the KMS")
    key: Path = Field(description="PEM private key of the KMS")
    client_ca: Path | None = Field(
        None, description="PEM CA bundle: require and verify client certificates (mTLS)"
    )


class ListenConfig(_Strict):
    """Where the KMS serves its HTTP API."""

    host: str = Field("127.0.0.1", description="address to bind")
    port: int = Field(8470, ge=0, le=65535, description="TCP port (0: any free port)")
    tls: TlsConfig | None = Field(None, description="serve HTTPS (required in production)")


class BrokerConfig(_Strict):
    """Lifetimes and limits of the key broker."""

    nonce_ttl: int = Field(60, ge=5, le=600, description="seconds a challenge nonce stays valid")
    session_ttl: int = Field(
        600, ge=30, le=86_400, description="seconds an attestation session stays valid"
    )
    max_grant_ttl: int = Field(300, ge=1, le=3600, description="largest ttl a grant may ask")
    default_grant_ttl: int = Field(60, ge=1, le=3600, description="ttl of a grant that names none")
    max_pending_nonces: int = Field(
        64, ge=1, le=10_000, description="unexpired challenges one TEE id may hold"
    )
    purge_every: float = Field(
        60.0, gt=0, le=3600, description="seconds between purges of expired rows"
    )
    keep_expired: int = Field(
        3600, ge=0, le=30 * 86_400, description="seconds expired grants are kept (410 vs 404)"
    )
    unauthenticated_rate: float = Field(
        1.0,
        gt=0,
        le=10_000,
        description="calls per second one peer may make to challenge/attest (token bucket refill)",
    )
    burst: int = Field(
        30, ge=1, le=100_000, description="calls one peer may make at once to challenge/attest"
    )
    throttle_peers: int = Field(
        10_000, ge=16, le=1_000_000, description="peers tracked by the throttle (memory bound)"
    )
    throttle_report_every: float = Field(
        60.0, gt=0, le=3600, description="seconds between kms.throttled entries of one peer"
    )

    @model_validator(mode="after")
    def _ttls(self) -> BrokerConfig:
        if self.default_grant_ttl > self.max_grant_ttl:
            raise ValueError("default_grant_ttl cannot exceed max_grant_ttl")
        return self


class KmsConfig(_Strict):
    """The whole kms.yaml."""

    mode: Literal["development", "production"] = Field(
        "development", description="production: insecure defaults are start-up errors"
    )
    data_dir: Path = Field(Path("kms-data"), description="state directory (db, keys, audit)")
    listen: ListenConfig = Field(default_factory=ListenConfig, description="the HTTP listener")
    keys: KeysConfig = Field(
        default_factory=KeysConfig, description="the KMS's own keyring (root backend, store)"
    )
    audit: AuditConfig = Field(default_factory=AuditConfig, description="the audit log")
    store: str = Field(
        "sqlite:kms/kms.db",
        description="TEE registry and broker database: sqlite:PATH (under data_dir) or"
        " postgresql://",
    )
    store_schema: str = Field(
        "tokengate_kms",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema of the registry and broker tables",
    )
    store_timeout: float = Field(5.0, gt=0, le=120, description="seconds per database call")
    credentials: Path = Field(
        Path("kms-credentials.yaml"),
        description="file of caller credentials (id, roles, sha256 of the secret)",
    )
    insecure_simulated_tee: bool = Field(
        False, description="accept simulated TEEs (no hardware guarantee; never in production)"
    )
    sim_key: Path = Field(
        Path("tee/sim-attestation.key"),
        description="PEM Ed25519 key (public or private) of simulated evidence, under data_dir",
    )
    max_body: int = Field(
        256 * 1024, ge=4096, le=16 * 1024 * 1024, description="largest request body in bytes"
    )
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="the key broker")

    def keys_for_kms(self) -> KeysConfig:
        """``keys`` plus the KMS's own aead purposes (grants at rest, remote-root KWKs)."""
        missing = [p for p in KMS_PURPOSES if p not in self.keys.purposes]
        if not missing:
            return self.keys
        purposes = {**self.keys.purposes, **{p: PurposeConfig(kind="aead") for p in missing}}
        return self.keys.model_copy(update={"purposes": purposes})


@dataclass(frozen=True, slots=True)
class KmsSettings:
    """A loaded kms.yaml with its paths resolved."""

    config: KmsConfig
    config_path: Path
    data_dir: Path
    credentials_path: Path
    sim_key_path: Path

    @property
    def production(self) -> bool:
        """Whether insecure defaults are start-up errors."""
        return self.config.mode == "production"

    def config_relative(self, path: Path) -> Path:
        """``path`` resolved against the config file's directory."""
        return path if path.is_absolute() else self.config_path.parent / path


def load_kms_config(path: Path, *, env: Mapping[str, str] | None = None) -> KmsSettings:
    """Read and validate kms.yaml; PolicyError listing every problem (``FILE: PATH: problem``)."""
    path = path.absolute()
    config = load_model(KmsConfig, path, label=path.name, env=env)
    base = path.parent
    data_dir = config.data_dir if config.data_dir.is_absolute() else base / config.data_dir
    credentials = (
        config.credentials if config.credentials.is_absolute() else base / config.credentials
    )
    sim_key = config.sim_key if config.sim_key.is_absolute() else data_dir / config.sim_key
    return KmsSettings(config, path, data_dir, credentials, sim_key)
