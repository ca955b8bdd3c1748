"""The boundary between the keyring and its root of trust.

A root backend protects keyring-wrapping keys (KWKs). The keyring itself is
wrapped by a KWK; each KWK version is created, opened and destroyed through
the root backend, so destroying a KWK in the root makes every old copy of the
keyring (backups, Redis AOF, PostgreSQL WAL) useless.

Rules every backend keeps:
- ``open_kwk`` is called at unseal time and when another replica rotated the
  keyring; never on the request path.
- ``description`` is safe to log: scheme and non-secret location only, never a
  PIN, passphrase, key or credential.
- Failures raise :class:`kms_client.errors.RootError` subclasses naming the
  cause (wrong PIN, missing token, unreachable KMS, wrong root) without secrets.
- Blocking client libraries (PKCS#11, boto3) run in a worker thread.
"""

from __future__ import annotations

from typing import Protocol


class RootBackend(Protocol):
    """A root key that creates, opens and destroys versioned KWKs."""

    @property
    def description(self) -> str:
        """Scheme and non-secret location, e.g. ``pkcs11:token=tokengate``."""
        ...

    async def open(self) -> None:
        """Connect and authenticate; raise a clear RootError when that fails."""
        ...

    async def close(self) -> None:
        """Release sessions and connections; idempotent."""
        ...

    async def create_kwk(self, version: int) -> tuple[bytes, bytes]:
        """Make KWK ``version``: return (32-byte key, reference to store with the keyring).

        The reference is opaque to the keyring (a wrapped blob or an object
        label); it must not let anyone recover the key without the root.
        """
        ...

    async def open_kwk(self, version: int, reference: bytes) -> bytes:
        """Recover the 32-byte KWK ``version`` from its reference through the root."""
        ...

    async def destroy_kwk(self, version: int, reference: bytes) -> None:
        """Make KWK ``version`` unrecoverable in the root; later ``open_kwk`` fails."""
        ...

    async def random(self, n: int) -> bytes | None:
        """``n`` bytes from the root's own RNG (an HSM's C_GenerateRandom), or None."""
        ...
