"""The key broker: challenge -> attest -> grant -> release once (docs/tee-protocol.md).

Rules:
- Nobody's word is taken for a worker: a grant is made only for a
  ``(tee_id, worker_key)`` the KMS itself attested (a live session), and a
  release goes only to a session of exactly that key.
- Every call re-reads the registry entry: a retired TEE is refused at
  challenge, attest, grant and release, whatever sessions or grants exist.
- A nonce is issued for one TEE id, expires, and is consumed before the
  evidence is checked (a failed attempt burns it too).
- K2 is 32 random bytes, stored only sealed under the KMS keyring (purpose
  :data:`kms.config.GRANT_PURPOSE`) with the whole binding as AAD context,
  returned once to the gateway, and released at most once, sealed with HPKE
  to the session's public key (:func:`tee.envelope.seal_release`).
- Audit before effect: a session is stored and a key handed out only after
  their ``kms.attest`` / ``kms.grant`` / ``kms.release`` entry is durable;
  an audit failure answers 503 and the key never leaves. Every refusal is
  audited (``kms.refuse``, or ``kms.attest`` with ``outcome: refused``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final, Protocol

from audit.schema import AuditValue
from kms.auditing import KmsAudit
from kms.broker_store import BrokerStore, Grant, Session
from kms.config import GRANT_PURPOSE, BrokerConfig
from kms.errors import BrokerError, Unavailable, refused
from kms.verification import EvidenceChecker
from kms_client.errors import KmsError
from kms_client.rng import random_bytes
from tee.binding import NONCE_SIZE
from tee.envelope import Binding, seal_release
from tee.errors import EvidenceRefused
from tee.registry import TeeEntry, TeeRegistry
from tee.wire import canonical_json

log = logging.getLogger("tokengate.kms.broker")

SESSION_PREFIX: Final = "tgs_"
GRANT_PREFIX: Final = "tgr_"
K2_SIZE: Final = 32
_GRANT_CONTEXT: Final = b"tokengate/kms-grant/v1|"


class KeyCipher(Protocol):
    """What the broker needs of the KMS keyring (a :class:`kms_client.KeyManager` is one)."""

    def encrypt(self, purpose: str, plaintext: bytes, *, context: bytes) -> bytes:
        """AES-256-GCM under the purpose's primary key, ``context`` bound."""
        ...

    def decrypt(self, purpose: str, ciphertext: bytes, *, context: bytes) -> bytes:
        """The plaintext, or an error when the ciphertext or context do not match."""
        ...


def key_id(public_key: bytes) -> str:
    """The audit name of a worker key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def session_digest(token: str) -> bytes:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _token(prefix: str, size: int) -> str:
    return prefix + base64.b32encode(random_bytes(size)).decode("ascii").rstrip("=").lower()


class Broker:
    """The broker's acts, over the registry, the broker store, the keyring and the audit log."""

    def __init__(
        self,
        *,
        registry: TeeRegistry,
        store: BrokerStore,
        keys: KeyCipher,
        audit: KmsAudit,
        checker: EvidenceChecker,
        settings: BrokerConfig,
        now: Callable[[], datetime],
    ) -> None:
        self._registry = registry
        self._store = store
        self._keys = keys
        self._audit = audit
        self._checker = checker
        self._settings = settings
        self._now = now

    async def challenge(self, tee_id: str) -> tuple[bytes, int]:
        """A fresh single-use nonce for ``tee_id`` and its expiry."""
        async with self._audit.refusals("challenge", tee_id=tee_id):
            await self._active_entry(tee_id)
            now = self._stamp()
            nonce = random_bytes(NONCE_SIZE)
            expires_at = now + self._settings.nonce_ttl
            added = await self._store.add_nonce(
                tee_id,
                nonce,
                expires_at=expires_at,
                now=now,
                limit=self._settings.max_pending_nonces,
            )
            if not added:
                raise refused(
                    "too_many_challenges", "kms: too many open challenges for this TEE", status=429
                )
            return nonce, expires_at

    async def attest(
        self, tee_id: str, nonce: bytes, public_key: bytes, evidence: bytes
    ) -> tuple[str, int]:
        """Check evidence independently; open a session bound to ``(tee_id, public_key)``."""
        kid = key_id(public_key)
        async with self._audit.refusals("attest", tee_id=tee_id, key_id=kid):
            entry = await self._active_entry(tee_id)
        now = self._now()
        try:
            if not await self._store.take_nonce(tee_id, nonce, now=int(now.timestamp())):
                raise EvidenceRefused("nonce", "not a live nonce issued for this TEE")
            await asyncio.to_thread(
                self._checker.check,
                entry,
                evidence,
                nonce=nonce,
                public_key=public_key,
                now=now,
            )
        except EvidenceRefused as e:
            await self._audit.emit(
                "kms.attest",
                tee_id=tee_id,
                platform=entry.platform.value,
                key_id=kid,
                outcome="refused",
                check=e.check[:64],
            )
            raise
        token = _token(SESSION_PREFIX, 32)
        expires_at = int(now.timestamp()) + self._settings.session_ttl
        await self._audit.emit(
            "kms.attest",
            tee_id=tee_id,
            platform=entry.platform.value,
            key_id=kid,
            outcome="ok",
            expires_at=expires_at,
        )
        await self._store.add_session(
            Session(session_digest(token), tee_id, public_key, expires_at)
        )
        return token, expires_at

    async def grant(
        self,
        actor: str,
        *,
        tee_id: str,
        worker_key: bytes,
        job: str,
        tenant: str,
        request_id: str,
        ttl: int | None,
    ) -> tuple[str, bytes, int]:
        """A one-time key for a job on an attested worker: ``(grant_id, K2, expires_at)``."""
        context: dict[str, AuditValue] = {
            "actor": actor,
            "tee_id": tee_id,
            "key_id": key_id(worker_key),
            "job": job,
            "tenant": tenant,
            "request_id": request_id,
        }
        async with self._audit.refusals("grant", **context):
            ttl = self._settings.default_grant_ttl if ttl is None else ttl
            if not 1 <= ttl <= self._settings.max_grant_ttl:
                raise BrokerError(f"kms: ttl must be 1 to {self._settings.max_grant_ttl} seconds")
            entry = await self._active_entry(tee_id)
            if not entry.allows_tenant(tenant):
                raise refused("tenant_not_allowed", "kms: this TEE may not see this tenant's data")
            if not entry.allows_job(job):
                raise refused("job_not_allowed", "kms: this TEE may not run this job")
            now = self._stamp()
            if not await self._store.has_session(tee_id, worker_key, now=now):
                raise refused("unattested", "kms: the KMS has not attested this worker key")
            grant_id = _token(GRANT_PREFIX, 16)
            binding = Binding(tee_id, worker_key, job, tenant, request_id, grant_id, now + ttl)
            k2 = random_bytes(K2_SIZE)
            sealed = self._seal(k2, binding)
            await self._store.add_grant(
                Grant(
                    grant_id,
                    tee_id,
                    worker_key,
                    job,
                    tenant,
                    request_id,
                    binding.expires_at,
                    sealed,
                )
            )
        await self._audit.emit(
            "kms.grant", grant_id=grant_id, expires_at=binding.expires_at, **context
        )
        return grant_id, k2, binding.expires_at

    async def release(
        self, session_token: str | None, *, grant_id: str, job: str, tenant: str, request_id: str
    ) -> bytes:
        """K2 sealed to the session's attested key, once per grant."""
        context: dict[str, AuditValue] = {
            "grant_id": grant_id,
            "job": job,
            "tenant": tenant,
            "request_id": request_id,
        }
        async with self._audit.refusals("release", **context) as extra:
            now = self._stamp()
            session = None
            if session_token is not None:
                session = await self._store.session(session_digest(session_token), now=now)
            if session is None:
                raise refused(
                    "unauthorized", "kms: a live attestation session is required", status=401
                )
            extra.update(tee_id=session.tee_id, key_id=key_id(session.public_key))
            grant = await self._store.grant(grant_id)
            if grant is None:
                raise refused("unknown_grant", "kms: unknown grant", status=404)
            _check_grant_binding(grant, session, job=job, tenant=tenant, request_id=request_id)
            await self._active_entry(grant.tee_id)
            _check_grant_state(grant, now)
            sealed = await self._store.claim(grant_id, now=now)
            if sealed is None:  # lost a race, or changed since it was read
                latest = await self._store.grant(grant_id)
                _check_grant_state(latest or grant, now)
                raise refused("already_released", "kms: this grant was released", status=409)
            binding = _binding(grant)
            k2 = self._open(sealed, binding)
            wrapped = seal_release(binding, k2)
        await self._audit.emit(
            "kms.release", tee_id=grant.tee_id, key_id=key_id(grant.worker_key), **context
        )
        return wrapped

    async def revoke(
        self, actor: str, tee_id: str, worker_key: bytes | None, *, reason: str = "api"
    ) -> tuple[int, int]:
        """Revoke the live sessions and unreleased grants of a TEE (or of one worker key)."""
        kid = key_id(worker_key) if worker_key is not None else None
        async with self._audit.refusals("revoke", actor=actor, tee_id=tee_id, key_id=kid):
            sessions, grants = await self._store.revoke(tee_id, worker_key, now=self._stamp())
        await self._audit.emit(
            "kms.revoke",
            actor=actor,
            tee_id=tee_id,
            key_id=kid,
            reason=reason,
            revoked_sessions=sessions,
            revoked_grants=grants,
        )
        return sessions, grants

    async def purge(self) -> None:
        """Drop expired nonces and old rows; wipe the keys of expired grants."""
        await self._store.purge(now=self._stamp(), keep=self._settings.keep_expired)

    # ---- helpers ----

    async def _active_entry(self, tee_id: str) -> TeeEntry:
        entry = await self._registry.get(tee_id)
        if entry is None:
            raise refused("unknown_tee", "kms: unknown TEE", status=404)
        if not entry.active:
            raise refused("retired", "kms: this TEE is retired")
        return entry

    def _seal(self, k2: bytes, binding: Binding) -> bytes:
        try:
            return self._keys.encrypt(GRANT_PURPOSE, k2, context=_context(binding))
        except KmsError as e:
            raise Unavailable("kms: the keyring cannot seal the grant") from e

    def _open(self, sealed: bytes, binding: Binding) -> bytes:
        try:
            k2 = self._keys.decrypt(GRANT_PURPOSE, sealed, context=_context(binding))
        except KmsError as e:
            log.error("kms: a grant's stored key does not open (%s)", type(e).__name__)
            raise Unavailable("kms: the grant's key cannot be opened") from e
        if len(k2) != K2_SIZE:
            raise Unavailable("kms: the grant's key cannot be opened")
        return k2

    def _stamp(self) -> int:
        return int(self._now().timestamp())


def _context(binding: Binding) -> bytes:
    return _GRANT_CONTEXT + canonical_json(binding.to_json())


def _binding(grant: Grant) -> Binding:
    return Binding(
        grant.tee_id,
        grant.worker_key,
        grant.job,
        grant.tenant,
        grant.request_id,
        grant.grant_id,
        grant.expires_at,
    )


def _check_grant_binding(
    grant: Grant, session: Session, *, job: str, tenant: str, request_id: str
) -> None:
    same = (
        hmac.compare_digest(grant.worker_key, session.public_key)
        & (grant.tee_id == session.tee_id)
        & (grant.job == job)
        & (grant.tenant == tenant)
        & (grant.request_id == request_id)
    )
    if not same:
        raise refused("grant_mismatch", "kms: this grant is bound to another worker or job")


def _check_grant_state(grant: Grant, now: int) -> None:
    if grant.revoked:
        raise refused("grant_revoked", "kms: this grant was revoked", status=410)
    if grant.released:
        raise refused("already_released", "kms: this grant was released", status=409)
    if grant.expires_at <= now:
        raise refused("grant_expired", "kms: this grant has expired", status=410)
