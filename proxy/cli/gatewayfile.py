"""gateway.yaml as the vault-facing commands read it: settings, the vault section, classes.

``tokengate keys``, ``token`` and ``migrate`` need what the gateway opens at
start-up: the keyring and audit sections, the data dir, the ``vault:`` store,
the untagged index version of ``tokenization:`` and the field classes
declared in the policy files. This module reads them once, with the start-up
validation (:func:`~proxy.settings.load_settings`) and its error messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plugins.base import FieldClass
from proxy.config import GatewayConfig
from vault.config import VaultConfig


@dataclass(frozen=True, slots=True)
class GatewayFile:
    """The validated parts of gateway.yaml that the vault-facing commands use."""

    gateway: GatewayConfig
    config_path: Path
    data_dir: Path
    policy_files: tuple[Path, ...]
    classes: Mapping[str, FieldClass]

    @property
    def vault(self) -> VaultConfig:
        """The ``vault:`` section."""
        return self.gateway.vault

    @property
    def untagged_index_version(self) -> int:
        """Index version of uuid and shape-preserving tokens (``tokenization:``)."""
        return self.gateway.tokenization.untagged_index_version

    @property
    def production(self) -> bool:
        """Whether insecure defaults are errors (``mode: production``)."""
        return self.gateway.mode == "production"


def load_gateway_file(path: Path) -> GatewayFile:
    """Read and validate gateway.yaml and its policy files; PolicyError naming every problem."""
    from proxy.settings import load_settings

    settings = load_settings(path)
    return GatewayFile(
        settings.gateway,
        settings.config_path,
        settings.data_dir,
        settings.files[1:],
        settings.classes,
    )


def field_classes(gf: GatewayFile) -> dict[str, FieldClass]:
    """Every field class declared in the policy files, by name."""
    return dict(gf.classes)
