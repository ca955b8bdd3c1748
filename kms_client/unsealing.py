"""Unseal: open the root, then load (or create) the keyring and its purposes.

On an empty store the first replica creates the keyring with every
configured purpose under KWK v1; a replica that loses that race loads the
winner's keyring instead. Purposes added to the config later are added to the
keyring on the next unseal. A purpose whose configured kind differs from the
keyring's stops start-up. If anything fails after the root opened, the root
is closed again so no secret stays in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from kms_client.config import PurposeSettings
from kms_client.errors import KmsError, Sealed
from kms_client.keyring import Keyring, KeyVersion
from kms_client.keyring_io import KeyringIO, Loaded
from kms_client.local_root import LocalRootKey
from kms_client.shamir import Share
from tokengate.errors import ConfigError

log = logging.getLogger(__name__)

type Created = list[tuple[str, KeyVersion]]


async def unseal_keyring(
    io: KeyringIO,
    settings: Mapping[str, PurposeSettings],
    *,
    shares: list[Share] | None,
    now: datetime,
) -> tuple[Loaded, Created]:
    """Open the root and the keyring; also return the purposes this call created."""
    inner = io.root.inner
    if shares is not None:
        if not isinstance(inner, LocalRootKey):
            raise ConfigError("keys.root: shares are only used with 'local:shamir'")
        inner.provide_shares(shares)
    if isinstance(inner, LocalRootKey) and inner.needs_shares:
        raise Sealed("kms: local:shamir root is waiting for shares (tokengate kms unseal)")
    await io.root.open()
    try:
        return await _load_or_create(io, settings, now=now)
    except KmsError:
        await _close_quietly(io)
        raise
    except ConfigError:
        await _close_quietly(io)
        raise


async def _load_or_create(
    io: KeyringIO, settings: Mapping[str, PurposeSettings], *, now: datetime
) -> tuple[Loaded, Created]:
    created: Created = []
    loaded = await io.load()
    if loaded is None:
        fresh = Keyring({})
        for name, s in settings.items():
            fresh = fresh.with_purpose(name, s.kind, now=now)
        loaded = await io.initialize(fresh)
        if loaded.keyring is fresh:
            created = [(name, fresh.ring(name).keys[0]) for name in settings]
    for name, s in settings.items():
        ring = loaded.keyring.purposes.get(name)
        if ring is not None and ring.kind is not s.kind:
            raise ConfigError(
                f"keys.purposes.{name}: configured kind '{s.kind.value}' but the keyring holds"
                f" '{ring.kind.value}' keys"
            )
    missing = [n for n in settings if n not in loaded.keyring.purposes]
    if not missing:
        return loaded, created

    def add(keyring: Keyring) -> Keyring | None:
        todo = [n for n in missing if n not in keyring.purposes]
        for n in todo:
            keyring = keyring.with_purpose(n, settings[n].kind, now=now)
        return keyring if todo else None

    added = await io.commit(add)
    if added is None:
        reloaded = await io.load()
        if reloaded is None:
            raise Sealed("kms: keyring store lost the keyring")
        return reloaded, created
    created += [(n, added.keyring.ring(n).keys[0]) for n in missing]
    return added, created


async def _close_quietly(io: KeyringIO) -> None:
    try:
        await io.root.close()
    except KmsError as e:
        log.warning("kms: closing the root after a failed unseal: %s", e)
