"""Key management: root backends, the versioned keyring per purpose, rotation, unseal.

The gateway calls :func:`open_key_manager` once with the ``keys:`` section
(:class:`KeysConfig`) and uses the returned :class:`KeyManager` for every
key operation. See docs/keys.md.
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
from kms_client.keyview import DerivedKey, KeyedDigest
from kms_client.manager import KeyManager
from kms_client.opening import open_key_manager
from kms_client.signing import KeySigner

__all__ = [
    "Auditor",
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
    "RootError",
    "Sealed",
    "open_key_manager",
]
