"""Key management: root backends, the versioned keyring per purpose, rotation, unseal.

The gateway calls :func:`open_key_manager` once with the ``keys:`` section
(:class:`KeysConfig`) and uses the returned :class:`KeyManager` for every
key operation; everything else here is for the CLI, the audit wiring and
packages that store keyring ciphertexts. See docs/keys.md.
"""

from __future__ import annotations

from kms_client.audit_port import Auditor
from kms_client.config import KeysConfig, PurposeConfig
from kms_client.errors import (
    DecryptionError,
    KeyringError,
    KeyStateError,
    KmsError,
    RootError,
    Sealed,
)
from kms_client.keyring import SigningAlgorithm
from kms_client.keyview import DerivedKey, KeyedDigest
from kms_client.manager import KeyManager
from kms_client.opening import build_key_manager, check_keys_config, open_key_manager
from kms_client.purpose_signer import PurposeSigner
from kms_client.rewrap import BatchResult, RewrapSource, register_rewrap_source
from kms_client.rng import random_bytes
from kms_client.secrets import WrappedSecrets
from kms_client.signing import KeySigner

__all__ = [
    "Auditor",
    "BatchResult",
    "DecryptionError",
    "DerivedKey",
    "KeyManager",
    "KeySigner",
    "KeyStateError",
    "KeyedDigest",
    "KeyringError",
    "KeysConfig",
    "KmsError",
    "PurposeConfig",
    "PurposeSigner",
    "RewrapSource",
    "RootError",
    "Sealed",
    "SigningAlgorithm",
    "WrappedSecrets",
    "build_key_manager",
    "check_keys_config",
    "open_key_manager",
    "random_bytes",
    "register_rewrap_source",
]
