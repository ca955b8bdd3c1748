"""PurposeSigner: the primary signer of a purpose, resolved at each use.

The audit log needs its checkpoint signer before the key manager can be
unsealed (the manager audits its own unseal), so the gateway opens the audit
log with a ``PurposeSigner("audit-checkpoint", fallback=...)``, opens the key
manager with the audit log as its auditor, then binds the signer to the
manager. Every call goes to the purpose's current primary, so after a
rotation checkpoints are signed with the new key. While unbound or sealed,
calls go to ``fallback`` (the audit package's checkpoint key file) if one is
given, else raise :class:`~kms_client.errors.Sealed` (the audit log then fails
closed). Verifiers need the fallback's public key too. It satisfies
``audit.signer.CheckpointSigner``.
"""

from __future__ import annotations

from typing import Protocol

from kms_client.errors import Sealed
from kms_client.manager import KeyManager


class Signer(Protocol):
    """An Ed25519 signer with an RFC 7638 ``kid`` (the audit CheckpointSigner shape)."""

    @property
    def kid(self) -> str:
        """RFC 7638 thumbprint of the public key."""
        ...

    def sign(self, message: bytes, /) -> bytes:
        """Ed25519 signature of ``message``."""
        ...

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``."""
        ...


class PurposeSigner:
    """A late-bound signer for one signing purpose of a KeyManager."""

    def __init__(
        self, purpose: str = "audit-checkpoint", *, fallback: Signer | None = None
    ) -> None:
        self.purpose = purpose
        self._fallback = fallback
        self._manager: KeyManager | None = None

    def bind(self, manager: KeyManager) -> None:
        """Resolve future calls through ``manager``."""
        self._manager = manager

    @property
    def kid(self) -> str:
        """RFC 7638 thumbprint of the current key."""
        return self._current().kid

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature by the current key."""
        return self._current().sign(message)

    def public_jwk(self) -> dict[str, str]:
        """Public JWK of the current key."""
        return self._current().public_jwk()

    def _current(self) -> Signer:
        manager = self._manager
        if manager is not None and not manager.is_sealed:
            return manager.signer(self.purpose)
        if self._fallback is not None:
            return self._fallback
        raise Sealed(f"kms: no key for '{self.purpose}' while the key manager is sealed or unbound")
