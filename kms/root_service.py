"""RootService: the KMS's root operations for gateways (the ``remote:`` root backend).

Each gateway credential (its client id) gets its own versioned KWKs. Rules:
- A KWK is 32 bytes from the process RNG, split 2-of-2: ``share`` (32 random
  bytes) goes into the KWK table row, ``kwk XOR share`` is sealed under the
  KMS's own keyring (purpose :data:`ROOT_PURPOSE`, AES-256-GCM, format v1 of
  :mod:`kms_client.aead`). The reference handed to the gateway is
  ``0x01 || kwk_id (16 bytes) || sealed``.
- The sealed half's AAD context binds the client id, the version and the
  kwk id (length-framed), so a reference opens only for the client it was
  made for, under its version, against its own row.
- Opening needs all three: the reference (the gateway's keyring store), the
  row's share (the KMS table) and the KMS keyring. Destroy marks the row
  destroyed and erases its share, so the KWK is gone even for someone who
  holds the reference and the KMS keyring, or flips the row back.
- Create of a version that is live for the client is refused (409); after a
  destroy the version may be created again (a new kwk id). Destroy is
  idempotent, and a reference that names no row is already unrecoverable.
- A reference that names no row of the caller, another version, or fails
  its tag is one answer: unknown (404). A destroyed one is 410.
- Every create, open and destroy is audited (client, version, kwk id, result)
  BEFORE the act takes effect: a KWK whose audit entry cannot be written is
  not released (a created one is destroyed again), and a destroy is recorded
  as ``requested`` before the row changes, then ``ok``.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Protocol

from audit.auditor import Auditor
from kms.root_errors import BadReference, KwkDestroyed, KwkExists, KwkUnknown
from kms.root_table import LIVE, RootKwkTable
from kms_client import aead, rng
from kms_client.errors import DecryptionError

log = logging.getLogger(__name__)

ROOT_PURPOSE: Final = "remote-root"
"""The KMS keyring purpose (kind ``aead``) that seals the gateways' KWKs."""

REFERENCE_FORMAT: Final = 0x01
KWK_BYTES: Final = 32
KWK_ID_BYTES: Final = 16
MAX_RANDOM: Final = 1024
_SEALED_LEN: Final = aead.OVERHEAD + KWK_BYTES
REFERENCE_LEN: Final = 1 + KWK_ID_BYTES + _SEALED_LEN
_CONTEXT_LABEL: Final = b"tokengate/kms-remote-root/v1"
_LEN: Final = struct.Struct(">I")


class KeyCipher(Protocol):
    """What the service needs of the KMS keyring (a :class:`kms_client.KeyManager` is one)."""

    def encrypt(self, purpose: str, plaintext: bytes, *, context: bytes) -> bytes:
        """AES-256-GCM under the purpose's primary key, ``context`` bound."""
        ...

    def decrypt(self, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
        """The plaintext; DecryptionError on any failure."""
        ...


class RootService:
    """Create, open and destroy KWKs per gateway client; random bytes from the KMS RNG."""

    def __init__(
        self,
        table: RootKwkTable,
        keys: KeyCipher,
        auditor: Auditor,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._table = table
        self._keys = keys
        self._auditor = auditor
        self._now = now or (lambda: datetime.now(UTC))

    async def create_kwk(self, client: str, version: int) -> tuple[bytes, bytes]:
        """A fresh KWK ``version`` for ``client``: (32-byte key, reference)."""
        _check_version(version)
        kwk, share, kwk_id = (rng.random_bytes(n) for n in (KWK_BYTES, KWK_BYTES, KWK_ID_BYTES))
        sealed = self._keys.encrypt(
            ROOT_PURPOSE, _xor(kwk, share), context=_context(client, version, kwk_id)
        )
        if not await self._table.add(client, version, kwk_id, share, now=self._stamp()):
            await self._audit("kms.root_create", client, version, None, "refused", reason="exists")
            raise KwkExists(f"kms: kwk v{version} is live for client '{client}'; not made again")
        try:
            await self._audit("kms.root_create", client, version, kwk_id, "ok")
        except BaseException:
            await self._undo_create(client, version, kwk_id)
            raise
        return kwk, bytes([REFERENCE_FORMAT]) + kwk_id + sealed

    async def open_kwk(self, client: str, version: int, reference: bytes) -> bytes:
        """The KWK ``version`` of ``client`` from its reference; KwkUnknown / KwkDestroyed."""
        _check_version(version)
        kwk_id, sealed = _parse(reference)
        row = await self._table.get(client, kwk_id)
        if row is None or row.version != version:
            await self._audit("kms.root_open", client, version, None, "refused", reason="unknown")
            raise _unknown(client, version)
        if row.state != LIVE or row.share is None:
            await self._audit(
                "kms.root_open", client, version, kwk_id, "refused", reason="destroyed"
            )
            raise KwkDestroyed(f"kms: kwk v{version} of client '{client}' is destroyed")
        try:
            half = self._keys.decrypt(
                ROOT_PURPOSE, sealed, context=_context(client, version, kwk_id)
            )
        except DecryptionError:
            await self._audit("kms.root_open", client, version, kwk_id, "refused", reason="unknown")
            raise _unknown(client, version) from None
        await self._audit("kms.root_open", client, version, kwk_id, "ok")
        return _xor(half, row.share)

    async def destroy_kwk(self, client: str, version: int, reference: bytes) -> None:
        """Make KWK ``version`` of ``client`` unrecoverable; idempotent."""
        _check_version(version)
        kwk_id, _ = _parse(reference)
        row = await self._table.get(client, kwk_id)
        if row is None or row.version != version:
            await self._audit("kms.root_destroy", client, version, None, "unknown")
            return
        if row.state != LIVE:
            await self._audit("kms.root_destroy", client, version, kwk_id, "already")
            return
        await self._audit("kms.root_destroy", client, version, kwk_id, "requested")
        changed = await self._table.destroy(client, kwk_id, now=self._stamp())
        await self._audit(
            "kms.root_destroy", client, version, kwk_id, "ok" if changed else "already"
        )

    async def random(self, n: int) -> bytes:
        """``n`` (1..1024) bytes from the KMS's RNG (HSM-augmented when its root has one)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_RANDOM:
            raise ValueError(f"kms: random length must be 1..{MAX_RANDOM}")
        return rng.random_bytes(n)

    async def _undo_create(self, client: str, version: int, kwk_id: bytes) -> None:
        try:
            await self._table.destroy(client, kwk_id, now=self._stamp())
        except Exception as e:  # the audit failure is the error to raise; the row is logged
            log.error(
                "kms: kwk v%d of client '%s' was made but not audited and could not be destroyed"
                " (%s); destroy it by hand",
                version,
                client,
                type(e).__name__,
            )

    async def _audit(
        self,
        event: str,
        client: str,
        version: int,
        kwk_id: bytes | None,
        result: str,
        *,
        reason: str | None = None,
    ) -> None:
        fields: dict[str, str | int | None] = {"client": client, "version": version}
        fields["result"] = result
        if kwk_id is not None:
            fields["kwk_id"] = kwk_id.hex()
        if reason is not None:
            fields["reason"] = reason
        await self._auditor.emit(event, **fields)

    def _stamp(self) -> int:
        return int(self._now().timestamp())


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError("kms: kwk version must be an integer")
    if not 1 <= version <= aead.MAX_VERSION:
        raise ValueError("kms: kwk version out of range")


def _parse(reference: bytes) -> tuple[bytes, bytes]:
    """(kwk id, sealed half) of a reference; BadReference for the wrong shape."""
    if len(reference) != REFERENCE_LEN or reference[0] != REFERENCE_FORMAT:
        raise BadReference("kms: not a remote root reference of this KMS")
    return reference[1 : 1 + KWK_ID_BYTES], reference[1 + KWK_ID_BYTES :]


def _context(client: str, version: int, kwk_id: bytes) -> bytes:
    name = client.encode("utf-8")
    return b"".join((_CONTEXT_LABEL, _LEN.pack(len(name)), name, _LEN.pack(version), kwk_id))


def _unknown(client: str, version: int) -> KwkUnknown:
    return KwkUnknown(
        f"kms: no kwk v{version} of client '{client}' matches that reference"
        " (made for another client, another version, or by another KMS)"
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))
