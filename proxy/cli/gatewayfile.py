"""gateway.yaml as the vault-facing commands read it: settings, the vault section, classes.

``tokengate keys``, ``token`` and ``migrate`` need what the gateway opens at
start-up: the keyring and audit sections, the data dir, the ``vault:`` store,
the untagged index version of ``tokenization:`` and the field classes
declared in the policy files. This module reads them once, with the start-up
validation (:func:`~proxy.settings.load_settings`) and its error messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plugins.base import FieldClass
from policy.compile import compile_classes
from policy.model import PolicyFile
from policy.yamlio import load_model
from proxy.config import GatewayConfig
from vault.config import VaultConfig


@dataclass(frozen=True, slots=True)
class GatewayFile:
    """The validated parts of gateway.yaml that the vault-facing commands use."""

    gateway: GatewayConfig
    config_path: Path
    data_dir: Path
    policy_files: tuple[Path, ...]

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
        settings.gateway, settings.config_path, settings.data_dir, settings.files[1:]
    )


def field_classes(gf: GatewayFile) -> dict[str, FieldClass]:
    """Every field class declared in the policy files, by name (PolicyError on a conflict)."""
    policies = []
    for path in gf.policy_files:
        label = _label(path, gf.config_path.parent)
        policies.append((label, load_model(PolicyFile, path, label=label)))
    return compile_classes(policies)


def _label(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
