"""Errors of the key management client.

Every message starts with ``kms:`` and names a cause an operator can act on
(wrong PIN, unreachable KMS, tampered keyring) without ever carrying key
material, a PIN, a passphrase or a credential. Decryption failures are one
opaque error whatever went wrong, so a caller learns nothing from the kind.
Configuration mistakes raise :class:`tokengate.errors.ConfigError`.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class KmsError(GatewayError):
    """Base of every deliberate kms_client error; fails the request closed."""

    status = 503
    code = "kms_error"


class Sealed(KmsError):
    """The key manager holds no key material (sealed); unseal it first."""

    status = 503
    code = "sealed"
    public = True

    def __init__(self, message: str = "kms: key manager is sealed") -> None:
        super().__init__(message)


class DecryptionError(KmsError):
    """Any decryption failure: wrong key, tampered data, revoked or unknown version."""

    status = 500
    code = "decryption_failed"

    def __init__(self, message: str = "kms: decryption failed") -> None:
        super().__init__(message)


class RootError(KmsError):
    """The root backend failed; the message names the cause, never a secret."""

    code = "kms_root_error"


class RootUnavailable(RootError):
    """The root cannot be reached: KMS endpoint down, HSM token missing, file absent."""

    code = "kms_root_unavailable"


class RootAuthError(RootError):
    """The root refused us: wrong PIN, passphrase or credentials."""

    code = "kms_root_auth"


class WrongRoot(RootError):
    """The keyring or KWK was made under another root key, or the root no longer has it."""

    code = "kms_wrong_root"


class KeyringError(KmsError):
    """The stored keyring is unreadable: tampered, rolled back, or the store failed."""

    code = "kms_keyring_error"


class KeyringConflict(KeyringError):
    """Compare-and-set lost: another replica changed the keyring first."""

    code = "kms_keyring_conflict"


class KeyStateError(KmsError):
    """A lifecycle request that the key's state forbids (unknown version, destroy the primary)."""

    status = 409
    code = "kms_key_state"
    public = True
