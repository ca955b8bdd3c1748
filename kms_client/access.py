"""KeyAccess: the request path of the key manager, against the keyring in memory.

Unsealed, every call reads one immutable :class:`~kms_client.keyview.KeyView`
and makes no IO and no root-backend call; sealed, every call raises
:class:`~kms_client.errors.Sealed` (503): fail closed. A request that meets a
key version newer than any in memory (another replica rotated) fails closed
too and calls :meth:`KeyAccess._newer_version_seen`, which the manager uses to
refresh at once instead of at the next tick.
"""

from __future__ import annotations

from kms_client import aead
from kms_client.errors import DecryptionError, Sealed
from kms_client.keyview import DerivedKey, KeyedDigest, KeyView
from kms_client.signing import KeySigner


class KeyAccess:
    """Encrypt, decrypt, MAC, derive and sign with the unsealed keyring."""

    def __init__(self) -> None:
        self._view: KeyView | None = None

    @property
    def is_sealed(self) -> bool:
        """True while no key material is in memory."""
        return self._view is None

    def encrypt(self, purpose: str, plaintext: bytes, *, context: bytes) -> bytes:
        """AES-256-GCM under the primary of ``purpose``, context bound as AAD."""
        return self._keys().encrypt(purpose, plaintext, context=context)

    def decrypt(self, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
        """Decrypt with the version the ciphertext names; DecryptionError on any failure."""
        view = self._keys()
        try:
            return view.decrypt(purpose, ciphertext, context=context)
        except DecryptionError:
            if len(ciphertext) >= aead.PREFIX_LEN and ciphertext[0] == aead.FORMAT_V1:
                self._stale_hint(view, purpose, int.from_bytes(ciphertext[1:5], "big"))
            raise

    def hmac(self, purpose: str, data: bytes, *, version: int | None = None) -> KeyedDigest:
        """HMAC-SHA256 under a prf purpose's key ``version`` (default: primary)."""
        view = self._keys()
        try:
            return view.hmac(purpose, data, version=version)
        except DecryptionError:
            self._stale_hint(view, purpose, version or 0)
            raise

    def derive_key(
        self,
        purpose: str,
        *,
        salt: bytes,
        info: bytes,
        version: int | None = None,
        length: int = 32,
    ) -> DerivedKey:
        """WARNING: HKDF output for a caller's own cipher; see KeyView.derive_key."""
        view = self._keys()
        try:
            return view.derive_key(purpose, salt=salt, info=info, version=version, length=length)
        except DecryptionError:
            self._stale_hint(view, purpose, version or 0)
            raise

    def signer(self, purpose: str) -> KeySigner:
        """The primary signer of a signing purpose (``kid``, ``algorithm``, ``sign``)."""
        return self._keys().signer(purpose)

    def verifiers(self, purpose: str) -> list[KeySigner]:
        """Key pairs whose signatures still verify, primary first."""
        return self._keys().verifiers(purpose)

    def jwks(self, purpose: str) -> dict[str, list[dict[str, str]]]:
        """Public JWKS of a signing purpose: current and still-valid previous keys."""
        return self._keys().jwks(purpose)

    def primary_version(self, purpose: str) -> int:
        """The version that encrypts or signs for ``purpose``."""
        return self._keys().primary_version(purpose)

    def _stale_hint(self, view: KeyView, purpose: str, version: int) -> None:
        if view.is_newer(purpose, version):
            self._newer_version_seen()

    def _newer_version_seen(self) -> None:
        """Hook: another replica made a key version this keyring lacks (any thread)."""

    def _keys(self) -> KeyView:
        view = self._view
        if view is None:
            raise Sealed
        return view
