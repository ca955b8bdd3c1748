"""KeyManager: the keyring the gateway uses, sealed or unsealed.

Rules:
- The request path (:class:`~kms_client.access.KeyAccess`) makes no IO and
  no root-backend call; sealed, it raises :class:`~kms_client.errors.Sealed`.
- Lifecycle acts (create, rotate, revoke, destroy, KWK rotation) are audited
  with result ``requested`` before they are committed (an audit failure
  refuses the act) and ``ok`` or ``failed`` after; unseal, seal and refreshes
  are audited once their outcome is known. No audit field carries key material.
- One asyncio lock serialises unseal, seal, refresh and lifecycle acts in
  this process; the store's compare-and-set serialises them across replicas.
- ``maintain()`` (run by :mod:`kms_client.maintenance` every
  ``refresh_interval``) picks up other replicas' changes, moves encryption
  counts to the store and makes the rotations the settings ask for.
- A signing purpose changes algorithm only by an explicit rotation
  (:meth:`KeyManager.ensure_algorithm`, or ``rotate(algorithm=...)``);
  scheduled rotations keep the primary's. ``upstream-signing`` and
  ``audit-checkpoint`` stay Ed25519 (backends and the audit verifier expect it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from kms_client.access import KeyAccess
from kms_client.audit_port import Auditor, AuditValue
from kms_client.config import PurposeSettings
from kms_client.errors import KeyringError, KeyStateError, KmsError, Sealed
from kms_client.keyring import KeyKind, Keyring, SigningAlgorithm
from kms_client.keyring_io import Change, KeyringIO, Loaded
from kms_client.keyview import KeyView
from kms_client.maintenance import Background
from kms_client.rng_install import RngInstaller
from kms_client.root import RootBackend
from kms_client.schedule import due_rotations, is_due
from kms_client.shamir import Share
from kms_client.store import KeyringStore
from kms_client.unsealing import unseal_keyring

log = logging.getLogger(__name__)
ED25519_ONLY = frozenset({"upstream-signing", "audit-checkpoint"})


class KeyManager(KeyAccess):
    """Keys per purpose for the gateway; built by :func:`kms_client.open_key_manager`."""

    def __init__(
        self,
        io: KeyringIO,
        *,
        settings: Mapping[str, PurposeSettings],
        auditor: Auditor,
        now: Callable[[], datetime],
        refresh_interval: float,
        rng: RngInstaller,
    ) -> None:
        super().__init__()
        self._io = io
        self._settings = dict(settings)
        self._auditor = auditor
        self._now = now
        self._rng = rng
        self._lock = asyncio.Lock()
        self._loaded: Loaded | None = None
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._background = Background(self, interval=refresh_interval)
        self._algorithms: dict[str, SigningAlgorithm] = {}

    # ---- state ----

    @property
    def root_calls(self) -> int:
        """Root-backend calls made by this manager so far (zero on the request path)."""
        return self._io.root.calls

    def root_calls_by_operation(self) -> Mapping[str, int]:
        """Root-backend calls per operation (open, open_kwk, create_kwk, ...)."""
        return self._io.root.calls_by_operation()

    @property
    def keyring_version(self) -> int | None:
        """Version of the keyring in memory, None while sealed."""
        return None if self._loaded is None else self._loaded.header.keyring_version

    @property
    def root_description(self) -> str:
        """The root backend, safe to log."""
        return self._io.root.description

    @property
    def store_description(self) -> str:
        """The keyring store, safe to log."""
        return self._io.store.description

    @property
    def root_backend(self) -> RootBackend:
        """The root backend itself (not counted; for sealed-state checks only)."""
        return self._io.root.inner

    @property
    def store(self) -> KeyringStore:
        """The keyring store (for wrapped secrets and rewrap sources)."""
        return self._io.store

    def keyring(self) -> Keyring:
        """The keyring in memory (key material included: never log it)."""
        if self._loaded is None:
            raise Sealed
        return self._loaded.keyring

    def _newer_version_seen(self) -> None:
        self._background.refresh_soon()

    # ---- seal / unseal ----

    async def unseal(self, *, shares: list[Share] | None = None, actor: str | None = None) -> None:
        """Load the keyring through the root (auto-unseal); no-op when unsealed."""
        async with self._lock:
            if self._view is not None:
                return
            try:
                loaded, created = await unseal_keyring(
                    self._io, self._settings, shares=shares, now=self._now()
                )
                rng_name = await self._rng.start(self._io.root)
            except KmsError as e:
                await self.audit("keyring.unseal", result="failed", reason=_reason(e), actor=actor)
                raise
            for purpose, key in created:
                await self.audit(
                    "key.create",
                    purpose=purpose,
                    version=key.version,
                    kind=loaded.keyring.ring(purpose).kind.value,
                    keyring_version=loaded.header.keyring_version,
                    result="ok",
                    actor=actor,
                )
            await self._install(loaded)
            await self.audit(
                "keyring.unseal",
                root=self.root_description[:256],
                store=self.store_description[:256],
                keyring_version=loaded.header.keyring_version,
                rng=rng_name,
                result="ok",
                actor=actor,
            )
        for purpose, algorithm in list(self._algorithms.items()):
            await self.ensure_algorithm(purpose, algorithm, actor=actor)

    async def seal(self, *, actor: str | None = None, reason: str | None = None) -> None:
        """Drop all key material from memory; requests fail with Sealed until unsealed."""
        if await self._drop():
            await self.audit("keyring.seal", reason=reason, actor=actor)

    async def _drop(self) -> bool:
        """Forget every key, stop the DRBG, close the root; True if anything was unsealed."""
        async with self._lock:
            was_sealed = self._view is None
            self._view, self._loaded = None, None
            self._io.forget()
            await self._rng.stop()
            if not was_sealed:
                await self._io.root.close()
            return not was_sealed

    # ---- lifecycle ----

    async def rotate(
        self,
        purpose: str,
        *,
        actor: str | None = None,
        algorithm: SigningAlgorithm | None = None,
    ) -> int:
        """Make a new primary for ``purpose``; the old one becomes decrypt-only.

        A signing purpose keeps its algorithm unless ``algorithm`` names another.
        """
        self._keys()
        _check_algorithm(purpose, algorithm)
        fields: dict[str, AuditValue] = {"purpose": purpose, "trigger": "manual", "actor": actor}
        loaded = await self._change(
            "key.rotate",
            fields,
            lambda k: k.rotated(purpose, now=self._now(), algorithm=algorithm)[0],
        )
        return self._primary(loaded, purpose)

    async def ensure_algorithm(
        self, purpose: str, algorithm: SigningAlgorithm, *, actor: str | None = None
    ) -> int | None:
        """Rotate signing purpose ``purpose`` to ``algorithm`` unless its primary uses it.

        Called at start-up with the configured algorithm; remembered, so a
        manager still sealed (waiting for shares) switches when it unseals. The check is repeated
        against the newest keyring inside the commit, so replicas starting
        together rotate once; the old key stays decrypt-only and keeps
        verifying. Returns the new primary version, None when nothing changed.
        """
        _check_algorithm(purpose, algorithm)
        self._algorithms[purpose] = algorithm  # applied again by every later unseal
        if self._loaded is None:
            return None
        ring = self.keyring().ring(purpose)
        if ring.kind is not KeyKind.SIGNING:
            raise KeyStateError(
                f"kms: purpose '{purpose}' holds {ring.kind.value} keys, not signing"
            )
        if ring.algorithm is algorithm:
            return None

        def change(keyring: Keyring) -> Keyring | None:
            if keyring.ring(purpose).algorithm is algorithm:
                return None  # another replica switched it already
            return keyring.rotated(purpose, now=self._now(), algorithm=algorithm)[0]

        fields: dict[str, AuditValue] = {"purpose": purpose, "trigger": "startup", "actor": actor}
        loaded = await self._change("key.rotate", fields, change)
        return self._primary(loaded, purpose)

    async def revoke(self, purpose: str, version: int, *, actor: str | None = None) -> None:
        """Make ``version`` refuse to decrypt (fail closed); from there it can only be destroyed."""
        self._keys()
        fields: dict[str, AuditValue] = {"purpose": purpose, "version": version, "actor": actor}
        await self._change(
            "key.revoke", fields, lambda k: k.revoked(purpose, version, now=self._now())
        )

    async def destroy(self, purpose: str, version: int, *, actor: str | None = None) -> None:
        """Shred ``version``, rotate the KWK and destroy the old KWK in the root."""
        self._keys()
        fields: dict[str, AuditValue] = {"purpose": purpose, "version": version, "actor": actor}
        loaded = await self._change(
            "key.destroy",
            fields,
            lambda k: k.destroyed(purpose, version, now=self._now()),
            new_kwk=True,
        )
        await self.finish_retired_kwks()
        log.info("kms: destroyed %s v%d (kwk now v%d)", purpose, version, loaded.header.kwk_version)

    async def rotate_kwk(self, *, actor: str | None = None) -> int:
        """Re-wrap the keyring under a new KWK and destroy the old KWK in the root."""
        self._keys()
        previous = self._loaded.header.kwk_version if self._loaded else None
        fields: dict[str, AuditValue] = {"previous": previous, "actor": actor}
        loaded = await self._change("keyring.kwk_rotate", fields, lambda k: k, new_kwk=True)
        await self.finish_retired_kwks()
        return loaded.header.kwk_version

    async def finish_retired_kwks(self) -> int:
        """Destroy in the root the KWKs a destroy or KWK rotation retired (resumable)."""
        self._keys()
        async with self._lock:
            await self._reload(own=True)  # the newest list, not the one in memory
            pending = self.keyring().retired_kwks
            for old in pending:
                await self.audit("keyring.kwk_destroy", kwk_version=old.version, result="requested")
            try:
                done = await self._io.finish_retired()
            except KmsError as e:
                for old in pending:
                    await self.audit(
                        "keyring.kwk_destroy",
                        kwk_version=old.version,
                        result="failed",
                        reason=_reason(e),
                    )
                raise
            for old in pending:
                await self.audit("keyring.kwk_destroy", kwk_version=old.version, result="ok")
            await self._reload(own=True)
            return done

    # ---- replicas and schedule ----

    async def refresh(self) -> bool:
        """Pick up a keyring another replica saved; True if the keyring in memory changed."""
        if self._view is None:
            return False
        current = self.keyring_version
        if await self._io.store.version() == current:
            return False
        async with self._lock:
            return await self._reload()

    async def maintain(self) -> None:
        """One background tick: refresh, move usage counts to the store, rotate what is due."""
        if self._view is None:
            return
        await self.refresh()
        await self._flush_usage()
        view, loaded = self._view, self._loaded
        if view is None or loaded is None:
            return
        for due in due_rotations(
            loaded.keyring, self._settings, view.known_usage(), now=self._now()
        ):
            change = self._rotation_if_due(self._settings[due.purpose], due.primary)
            fields: dict[str, AuditValue] = {
                "purpose": due.purpose,
                "previous": due.primary,
                "trigger": due.trigger,
                "actor": "scheduler",
            }
            await self._change("key.rotate", fields, change)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` first in :meth:`close` (e.g. the control socket)."""
        self._closers.append(closer)

    def start(self) -> None:
        """Start the background task (refresh, usage, scheduled rotation); idempotent."""
        self._background.start()

    async def close(self) -> None:
        """Stop the background task, drop all key material, release the store.

        Shutdown is recorded by the gateway (``gateway.stop``), not as a seal:
        close the audit log first (its final checkpoint is signed with the
        audit-checkpoint key), then the key manager.
        """
        await self._background.stop()
        closers, self._closers = self._closers, []
        for closer in closers:
            await closer()
        await self._drop()
        await self._io.store.close()

    # ---- internals ----

    async def _change(
        self,
        event: str,
        fields: dict[str, AuditValue],
        change: Change,
        *,
        new_kwk: bool = False,
    ) -> Loaded:
        async with self._lock:
            await self.audit(event, **fields, result="requested")
            try:
                loaded = await self._io.commit(change, new_kwk=new_kwk)
            except KmsError as e:
                await self.audit(event, **fields, result="failed", reason=_reason(e))
                raise
            if loaded is None:  # nothing to do any more (another replica did it)
                await self._reload(own=True)
                await self.audit(event, **fields, result="ok", reason="already done elsewhere")
                return self._current()
            await self._install(loaded)
            done = {**fields, "keyring_version": loaded.header.keyring_version}
            purpose = fields.get("purpose")
            if event == "key.rotate" and isinstance(purpose, str):
                done["version"] = self._primary(loaded, purpose)
            if event in ("key.destroy", "keyring.kwk_rotate"):
                done["kwk_version"] = loaded.header.kwk_version
            await self.audit(event, **done, result="ok")
            return loaded

    async def _reload(self, *, own: bool = False) -> bool:
        if self._view is None:
            return False
        stored = await self._io.store.load()
        if stored is None:
            raise KeyringError("kms: keyring store lost the keyring")
        current = self._current()
        previous = current.header.keyring_version
        if stored.version == previous:
            return False
        if stored.version < previous:
            await self.audit(
                "keyring.refresh",
                keyring_version=stored.version,
                previous=previous,
                result="failed",
                reason="rollback",
            )
            raise KeyringError(
                f"kms: keyring in store went back from version {previous} to"
                f" {stored.version}; refusing a rollback"
            )
        loaded = await self._io.open_stored(stored)
        await self._install(loaded)
        if not own:  # our own commits are audited as what they are
            await self.audit(
                "keyring.refresh", keyring_version=stored.version, previous=previous, result="ok"
            )
        return True

    async def _install(self, loaded: Loaded) -> None:
        usage = {}
        for name, ring in loaded.keyring.purposes.items():
            if self._settings.get(name) and self._settings[name].rotate_after_encryptions:
                key = (name, ring.primary)
                usage[key] = await self._io.store.add_usage(name, ring.primary, 0)
        old = self._view
        view = KeyView(loaded.keyring, known_usage=usage)
        if old is not None:
            view.record_totals({}, old.take_usage())
        self._view, self._loaded = view, loaded

    async def _flush_usage(self) -> None:
        view = self._view
        if view is None:
            return
        taken = view.take_usage()
        totals: dict[tuple[str, int], int] = {}
        try:
            for (purpose, version), count in taken.items():
                totals[(purpose, version)] = await self._io.store.add_usage(purpose, version, count)
        finally:
            view.record_totals(totals, taken)

    def _rotation_if_due(self, settings: PurposeSettings, primary: int) -> Change:
        def change(keyring: Keyring) -> Keyring | None:
            now = self._now()
            if is_due(keyring, settings, self._usage(), now=now, primary=primary) is None:
                return None
            return keyring.rotated(settings.name, now=now)[0]

        return change

    def _usage(self) -> Mapping[tuple[str, int], int]:
        view = self._view
        return {} if view is None else view.known_usage()

    def _current(self) -> Loaded:
        if self._loaded is None:
            raise Sealed
        return self._loaded

    @staticmethod
    def _primary(loaded: Loaded, purpose: str) -> int:
        return loaded.keyring.ring(purpose).primary

    async def audit(self, event: str, /, **fields: AuditValue) -> None:
        """Emit an audit event through this manager's auditor (None fields dropped)."""
        await self._auditor.emit(event, **{k: v for k, v in fields.items() if v is not None})


def _check_algorithm(purpose: str, algorithm: SigningAlgorithm | None) -> None:
    if algorithm is SigningAlgorithm.ES256 and purpose in ED25519_ONLY:
        raise KeyStateError(f"kms: purpose '{purpose}' signs with Ed25519 only")


def _reason(error: Exception) -> str:
    return str(error)[:256]
