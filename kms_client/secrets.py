"""WrappedSecrets: small secrets kept encrypted under a keyring purpose in the keyring store.

For values the gateway must read back (TOTP seeds, OIDC client secrets,
upstream API keys). Each value is a keyring ciphertext
(:mod:`kms_client.aead`) whose context binds the record name, so records
cannot be swapped; the store holds only ciphertexts. After a rotation,
``tokengate keys rewrap`` moves old records to the new primary
(:class:`SecretsRewrap` in :mod:`kms_client.rewrap`).
"""

from __future__ import annotations

from kms_client.manager import KeyManager


def secret_context(name: str) -> bytes:
    """The AAD context of record ``name``."""
    return b"tokengate/secret/v1|" + name.encode("utf-8")


class WrappedSecrets:
    """Get, put and delete secrets of one aead purpose (default ``mfa-secrets``)."""

    def __init__(self, manager: KeyManager, *, purpose: str = "mfa-secrets") -> None:
        self._manager = manager
        self.purpose = purpose

    async def put(self, name: str, value: bytes) -> None:
        """Encrypt ``value`` under the primary and store it as ``name``."""
        ciphertext = self._manager.encrypt(self.purpose, value, context=secret_context(name))
        await self._manager.store.secret_put(self.purpose, name, ciphertext)

    async def get(self, name: str) -> bytes | None:
        """The plaintext of ``name``, None if absent; DecryptionError if it cannot be opened."""
        ciphertext = await self._manager.store.secret_get(self.purpose, name)
        if ciphertext is None:
            return None
        return self._manager.decrypt(self.purpose, ciphertext, context=secret_context(name))

    async def delete(self, name: str) -> bool:
        """Remove ``name`` (per-record erasure); False if it did not exist."""
        return await self._manager.store.secret_delete(self.purpose, name)
