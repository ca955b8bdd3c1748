"""Loading and committing the wrapped keyring through the root and the store.

Rules:
- Every change is read-modify-write: load the newest keyring, apply a pure
  change, wrap it as version ``n+1`` and compare-and-set against ``n``. A
  lost race reloads and re-applies the change to the winner's keyring, so
  concurrent writers serialise and the keyring never forks.
- The KWK is reopened through the root only when the stored header names a
  KWK not already in memory; everything else is local.
- A KWK rotation creates the new KWK in the root first, lists the old one in
  ``retired_kwks`` of the keyring it saves, and destroys it in the root only
  after that save succeeded; the next commit drops it from the list. A crash
  in between leaves the old KWK listed, and :meth:`KeyringIO.finish_retired`
  completes the job. A KWK made for a save that lost its race is destroyed.
- A stored header whose version differs from the store's version is tampering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from kms_client import envelope, rng
from kms_client.counting_root import CountingRoot
from kms_client.envelope import Header
from kms_client.errors import KeyringConflict, KeyringError
from kms_client.keyring import Keyring, RetiredKwk
from kms_client.store import KeyringStore, StoredKeyring

MAX_ATTEMPTS = 32

type Change = Callable[[Keyring], Keyring | None]


@dataclass(frozen=True)
class Loaded:
    """A keyring as opened from the store, with the header it was wrapped under."""

    keyring: Keyring
    header: Header


class KeyringIO:
    """The one place that reads and writes the wrapped keyring."""

    def __init__(self, root: CountingRoot, store: KeyringStore, *, name: str) -> None:
        self.root = root
        self.store = store
        self.name = name
        self._kwks: dict[tuple[int, bytes], bytes] = {}

    def forget(self) -> None:
        """Drop every KWK held in memory (seal)."""
        self._kwks.clear()

    async def load(self) -> Loaded | None:
        """The newest keyring in the store, or None if there is none yet."""
        stored = await self.store.load()
        return None if stored is None else await self.open_stored(stored)

    async def open_stored(self, stored: StoredKeyring) -> Loaded:
        """Unwrap a stored keyring, reopening its KWK through the root if needed."""
        header = envelope.read_header(stored.blob, name=self.name)
        if header.keyring_version != stored.version:
            raise KeyringError(
                f"kms: stored keyring says version {header.keyring_version} but the store"
                f" holds version {stored.version} (tampered)"
            )
        kwk = await self._kwk(header)
        return Loaded(envelope.unwrap(stored.blob, header, kwk), header)

    async def initialize(self, keyring: Keyring) -> Loaded:
        """Save the first keyring under a new KWK v1; if another writer won, load theirs."""
        kwk, reference = await self.root.create_kwk(1)
        header = Header(self.name, 1, 1, reference)
        try:
            await self.store.save(envelope.wrap(keyring, header, kwk), version=1, expected=None)
        except KeyringConflict:
            await self.root.destroy_kwk(1, reference)
            loaded = await self.load()
            if loaded is None:
                raise KeyringError("kms: keyring store lost the keyring it just had") from None
            return loaded
        self._remember((1, reference), kwk)
        return Loaded(keyring, header)

    async def commit(self, change: Change, *, new_kwk: bool = False) -> Loaded | None:
        """Apply ``change`` to the newest keyring and save it; None if ``change`` said no-op."""
        for _ in range(MAX_ATTEMPTS):
            stored = await self.store.load()
            if stored is None:
                raise KeyringError("kms: keyring store is empty; the keyring was never created")
            current = await self.open_stored(stored)
            changed = change(current.keyring)
            if changed is None:
                return None
            saved = await self._try_save(current, changed, stored.version, new_kwk=new_kwk)
            if saved is not None:
                return saved
            await asyncio.sleep(rng.random_bytes(1)[0] / 255 * 0.02)  # jitter before retrying
        raise KeyringConflict(f"kms: keyring kept changing; gave up after {MAX_ATTEMPTS} tries")

    async def finish_retired(self) -> int:
        """Destroy KWKs listed as retired in the root, then drop them from the keyring."""
        loaded = await self.load()
        if loaded is None or not loaded.keyring.retired_kwks:
            return 0
        done = loaded.keyring.retired_kwks
        for old in done:
            await self.root.destroy_kwk(old.version, old.reference)

        def drop(keyring: Keyring) -> Keyring | None:
            left = tuple(r for r in keyring.retired_kwks if r not in done)
            return None if left == keyring.retired_kwks else keyring.with_retired_kwks(left)

        await self.commit(drop)
        return len(done)

    async def _try_save(
        self, current: Loaded, keyring: Keyring, version: int, *, new_kwk: bool
    ) -> Loaded | None:
        old = current.header
        if new_kwk:
            kwk_version = old.kwk_version + 1
            kwk, reference = await self.root.create_kwk(kwk_version)
            retired = RetiredKwk(old.kwk_version, old.kwk_reference)
            keyring = keyring.with_retired_kwks((*keyring.retired_kwks, retired))
        else:
            kwk_version, reference = old.kwk_version, old.kwk_reference
            kwk = self._kwks[(kwk_version, reference)]
        header = Header(self.name, version + 1, kwk_version, reference)
        try:
            await self.store.save(
                envelope.wrap(keyring, header, kwk), version=version + 1, expected=version
            )
        except KeyringConflict:
            if new_kwk:
                await self.root.destroy_kwk(kwk_version, reference)
            return None
        self._remember((kwk_version, reference), kwk)
        return Loaded(keyring, header)

    async def _kwk(self, header: Header) -> bytes:
        key = (header.kwk_version, header.kwk_reference)
        kwk = self._kwks.get(key)
        if kwk is None:
            kwk = await self.root.open_kwk(header.kwk_version, header.kwk_reference)
            self._remember(key, kwk)
        return kwk

    def _remember(self, key: tuple[int, bytes], kwk: bytes) -> None:
        # Only the KWK of the newest keyring stays in memory.
        self._kwks.clear()
        self._kwks[key] = kwk
