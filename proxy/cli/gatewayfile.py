"""gateway.yaml as the vault-facing commands read it: settings, the ``vault:`` section, classes.

``tokengate keys``, ``token`` and ``migrate`` need the same things the
gateway opens at start-up: the keyring and audit sections, the data dir, the
``vault:`` store and the field classes declared in the policy files. This
module reads them once, with the start-up validation and its error messages.

Interim rule: until :class:`~proxy.config.GatewayConfig` carries the
``vault:`` section itself, this module reads that section with
:class:`~vault.config.VaultConfig` and validates the rest of the file as
start-up does (minus the route checks that need the section-free file).
Once the model has the field, :func:`load_gateway_file` simply uses
:func:`~proxy.settings.load_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from plugins.base import FieldClass
from policy.compile import compile_classes
from policy.errors import PolicyError
from policy.model import PolicyFile
from policy.yamlio import load_model, read_yaml, validation_problems
from proxy.config import GatewayConfig
from vault.config import VaultConfig


@dataclass(frozen=True, slots=True)
class GatewayFile:
    """The validated parts of gateway.yaml that the vault-facing commands use."""

    gateway: GatewayConfig
    vault: VaultConfig
    config_path: Path
    data_dir: Path
    policy_files: tuple[Path, ...]

    @property
    def production(self) -> bool:
        """Whether insecure defaults are errors (``mode: production``)."""
        return self.gateway.mode == "production"


def load_gateway_file(path: Path) -> GatewayFile:
    """Read and validate gateway.yaml and its policy files; PolicyError naming every problem."""
    from proxy.settings import load_settings, policy_paths

    if "vault" in GatewayConfig.model_fields or not _has_vault_section(path):
        settings = load_settings(path)
        vault = getattr(settings.gateway, "vault", None)
        if not isinstance(vault, VaultConfig):  # the section is absent: its defaults
            vault = VaultConfig()
        return GatewayFile(
            settings.gateway, vault, settings.config_path, settings.data_dir, settings.files[1:]
        )
    path = path.absolute()
    label = path.name
    raw = read_yaml(path, label=label)
    if not isinstance(raw, Mapping):
        raise PolicyError([f"{label}: the file must be a mapping"])
    rest = {k: v for k, v in raw.items() if k != "vault"}
    try:
        vault = VaultConfig.model_validate(raw.get("vault") or {})
    except ValidationError as e:
        raise PolicyError(
            [p.replace(f"{label}: ", f"{label}: vault.", 1) for p in validation_problems(label, e)]
        ) from e
    try:
        gateway = GatewayConfig.model_validate(rest)
    except ValidationError as e:
        raise PolicyError(validation_problems(label, e)) from e
    base = path.parent
    data_dir = gateway.data_dir if gateway.data_dir.is_absolute() else base / gateway.data_dir
    return GatewayFile(gateway, vault, path, data_dir, tuple(policy_paths(gateway, base)))


def _has_vault_section(path: Path) -> bool:
    raw = read_yaml(path.absolute(), label=path.name)
    return isinstance(raw, Mapping) and "vault" in raw


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
