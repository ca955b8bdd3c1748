"""The ``keys:`` section of gateway.yaml.

Built-in purposes are always present with the settings below unless the
``purposes`` map overrides them; custom purposes must say their ``kind``.
``prf`` purposes (index, convergent, hash) are never rotated on a schedule:
their outputs are looked up by value, so a new version applies to new tokens
only and old versions must stay usable (DESIGN.md, "Tokens and the vault
record"). Signing purposes do not encrypt, so they take no encryption limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kms_client.keyring import KeyKind

PURPOSE_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
MAX_NONCE_ENCRYPTIONS = 2**32  # NIST SP 800-38D limit for random 96-bit GCM nonces per key


@dataclass(frozen=True)
class PurposeSettings:
    """The effective settings of one purpose."""

    name: str
    kind: KeyKind
    max_age: timedelta | None
    rotate_after_encryptions: int | None


_BUILTIN: dict[str, tuple[KeyKind, int | None, int | None]] = {
    "tokenize": (KeyKind.AEAD, 365, 2**31),
    "index": (KeyKind.PRF, None, None),
    "convergent": (KeyKind.PRF, None, None),
    "hash": (KeyKind.PRF, None, None),
    "session-signing": (KeyKind.SIGNING, 30, None),
    "upstream-signing": (KeyKind.SIGNING, 90, None),
    "mfa-secrets": (KeyKind.AEAD, 365, 2**31),
    "egress-ca": (KeyKind.AEAD, 365, 2**31),
    "audit-checkpoint": (KeyKind.SIGNING, 365, None),
}
BUILTIN_PURPOSES = tuple(_BUILTIN)


class PurposeConfig(BaseModel):
    """Overrides for one purpose."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["aead", "prf", "signing"] | None = Field(
        None, description="key type: aead, prf or signing; fixed for built-in purposes"
    )
    max_age_days: int | None = Field(
        None, ge=1, description="rotate the primary once it is this many days old (aead, signing)"
    )
    rotate_after_encryptions: int | None = Field(
        None,
        ge=1,
        le=MAX_NONCE_ENCRYPTIONS // 2,
        description="rotate before a key version has made this many encryptions (aead only)",
    )
    never_rotate: bool = Field(
        False,
        description="no scheduled or usage rotation (the 2^32 GCM hard limit still applies)",
    )


class KeysConfig(BaseModel):
    """Key management: root backend, keyring store, rotation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str | None = Field(
        None,
        description=(
            "root backend URI (local:, pkcs11:, aws-kms://, remote: for the tokengate KMS);"
            " default: dev root file"
        ),
    )
    store: str | None = Field(
        None,
        description="keyring store URI (file:, redis://, postgresql://); default: file in data dir",
    )
    keyring_name: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="identity of this keyring in its store, bound into the wrapped keyring",
    )
    refresh_interval: float = Field(
        5.0, gt=0, le=3600, description="seconds between checks for another replica's changes"
    )
    rng_reseed_interval: float = Field(
        300.0, gt=0, description="seconds between DRBG reseeds from a root that has an RNG"
    )
    control_dir: str | None = Field(
        None,
        description="directory of the per-process sockets 'tokengate kms unseal|seal|status' use",
    )
    rewrap_batch_size: int = Field(
        100, ge=1, le=10_000, description="ciphertexts moved per batch by 'tokengate keys rewrap'"
    )
    purposes: dict[str, PurposeConfig] = Field(
        default_factory=dict,
        description="per-purpose overrides; built-in purposes always exist",
    )

    @model_validator(mode="after")
    def _check_purposes(self) -> KeysConfig:
        self.purpose_settings()
        return self

    def purpose_settings(self) -> dict[str, PurposeSettings]:
        """Every purpose with its effective settings; ValueError naming a bad one."""
        out: dict[str, PurposeSettings] = {}
        names = list(_BUILTIN) + [n for n in self.purposes if n not in _BUILTIN]
        for name in names:
            out[name] = _settings(name, self.purposes.get(name))
        return out


def _settings(name: str, cfg: PurposeConfig | None) -> PurposeSettings:
    where = f"purposes.{name}"
    if not re.match(PURPOSE_PATTERN, name):
        raise ValueError(f"{where}: purpose names are lowercase letters, digits and '-'")
    builtin = _BUILTIN.get(name)
    cfg = cfg or PurposeConfig()
    if builtin is None:
        if cfg.kind is None:
            raise ValueError(f"{where}: a custom purpose must set 'kind'")
        kind = KeyKind(cfg.kind)
        default_days = None
        default_limit = MAX_NONCE_ENCRYPTIONS // 2 if kind is KeyKind.AEAD else None
    else:
        kind, default_days, default_limit = builtin
        if cfg.kind is not None and cfg.kind != kind.value:
            raise ValueError(f"{where}: the kind of a built-in purpose is '{kind.value}'")
    if kind is KeyKind.PRF and (cfg.max_age_days or cfg.rotate_after_encryptions):
        raise ValueError(f"{where}: prf keys (index, convergent, hash) never rotate on a schedule")
    if kind is KeyKind.SIGNING and cfg.rotate_after_encryptions:
        raise ValueError(f"{where}: signing keys do not encrypt; drop rotate_after_encryptions")
    if cfg.never_rotate:
        return PurposeSettings(name, kind, None, None)
    days = cfg.max_age_days if cfg.max_age_days is not None else default_days
    limit = cfg.rotate_after_encryptions or default_limit
    return PurposeSettings(name, kind, timedelta(days=days) if days else None, limit)
