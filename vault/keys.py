"""The keyring as the vault needs it: HMAC, HKDF and the primary version, nothing more.

:class:`VaultKeys` is the slice of ``kms_client.access.KeyAccess`` (and of the
unsealed ``KeyView``) that the engine and the rewrap use, so the vault does not
depend on the key manager itself. Purposes used: ``index`` (prf: record ids),
``convergent`` (prf: deterministic token secrets) and ``tokenize`` (aead: the
per-record outer keys, derived by HKDF).

Failures keep kms_client's meaning: :class:`~kms_client.errors.DecryptionError`
for a revoked, destroyed or unknown version (the engine turns it into one opaque
refusal), :class:`~kms_client.errors.Sealed` when no key is in memory (the whole
call fails closed).
"""

from __future__ import annotations

from typing import Protocol

PURPOSE_TOKENIZE = "tokenize"
PURPOSE_INDEX = "index"
PURPOSE_CONVERGENT = "convergent"


class Digest(Protocol):
    """An HMAC-SHA256 output and the key version that made it."""

    @property
    def version(self) -> int: ...

    @property
    def digest(self) -> bytes: ...


class Derived(Protocol):
    """HKDF output from a keyring key and the version it came from."""

    @property
    def version(self) -> int: ...

    @property
    def key(self) -> bytes: ...


class VaultKeys(Protocol):
    """What the vault asks of the unsealed keyring."""

    def hmac(self, purpose: str, data: bytes, *, version: int | None = None) -> Digest:
        """HMAC-SHA256 under a prf purpose's key ``version`` (default: primary)."""
        ...

    def derive_key(
        self,
        purpose: str,
        *,
        salt: bytes,
        info: bytes,
        version: int | None = None,
        length: int = 32,
    ) -> Derived:
        """WARNING: HKDF-SHA256 key material from key ``version`` (default: primary)."""
        ...

    def primary_version(self, purpose: str) -> int:
        """The version that makes new tokens or records for ``purpose``."""
        ...
