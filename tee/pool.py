"""The gateway's pool of attested TEE workers: admission, re-attestation, eviction, round robin.

Rules (DESIGN.md "TEE pool", docs/tee-protocol.md "Gateway side"):
- A configured worker is in rotation only after it attested against the
  KMS registry's entry for its TEE id (:mod:`tee.admission`), with a fresh
  nonce from the project's RNG. Each member is re-attested every
  ``reattest_every`` seconds; a worker out of rotation is retried every
  ``retry_every`` seconds and re-admitted once it attests again.
- Re-attestation makes the worker generate a new key pair; envelopes go to
  the newest attested key only. A member stays in rotation while it is being
  re-attested (its previous key stays valid for the worker's grace period).
- Leaving rotation (failed attestation, retired entry, registry or worker
  unreachable, a job that found it unreachable) is an eviction: an audit
  entry ``tee.evict``, the ``tokengate_tee_evictions`` counter, a warning log
  line, and a KMS revoke of the sessions and grants of every key the worker
  was known by. A worker already out of rotation is not evicted again.
- Every attestation answer the pool checked is audited (``tee.attest``);
  an admission whose audit entry cannot be written does not happen.
- :meth:`TeePool.pick` is round robin over members; with none it raises
  :class:`PoolUnavailable` (503): the caller fails closed.
- Time (monotonic clock, verification time) and the RNG are injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Counter, Gauge

from audit.errors import AuditError
from kms_client.audit_port import Auditor
from kms_client.rng import random_bytes
from tee.admission import (
    Admission,
    Attestable,
    AttestAnswer,
    TeeEntry,
    Verification,
    verify_answer,
)
from tee.binding import NONCE_SIZE
from tee.errors import EvidenceRefused, KeyBrokerRefused, TeeError, WorkerRefusal
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.tee")
KEYS_KEPT = 32  # keys per worker revoked on eviction: > KMS session lifetime / reattest_every

ATTESTATIONS = Counter(
    "tokengate_tee_attestations",
    "Attestations of pool workers checked by the gateway, by TEE id and result.",
    ("tee_id", "result"),
)
EVICTIONS = Counter(
    "tokengate_tee_evictions",
    "Workers taken out of the TEE pool, by TEE id and the check that failed.",
    ("tee_id", "check"),
)
ATTESTED = Gauge(
    "tokengate_tee_workers_attested",
    "Workers attested and in rotation in a gateway process.",
    multiprocess_mode="livemin",
)


class PoolUnavailable(TeeError):
    """No attested worker is in rotation: the ``tee`` action fails closed (503)."""

    code = "tee_unavailable"


class Registry(Protocol):
    """The KMS calls the pool makes (``tee.broker_client``)."""

    async def get_tee(self, tee_id: str) -> TeeEntry:
        """The registry entry of ``tee_id``."""
        ...

    async def revoke(self, tee_id: str, worker_key: bytes | None = None) -> object:
        """Revoke the sessions and unreleased grants of ``tee_id`` (only ``worker_key``'s)."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """A configured worker: the registry id of its TEE and where it listens."""

    tee_id: str
    address: str

    @property
    def label(self) -> str:
        """How logs, audit entries and errors name the worker (no secrets)."""
        return f"{self.tee_id}@{self.address}"


@dataclass(frozen=True, slots=True)
class Member[L: Attestable]:
    """A worker in rotation: its client and what its last attestation proved."""

    spec: WorkerSpec
    link: L
    admission: Admission
    attested_at: float  # monotonic seconds

    @property
    def public_key(self) -> bytes:
        """The worker's attested X25519 key: envelopes are sealed to it."""
        return self.admission.public_key


@dataclass(slots=True, eq=False)  # identity: slots are kept in sets
class _Slot[L: Attestable]:
    spec: WorkerSpec
    link: L
    member: Member[L] | None = None
    out: bool = False  # evicted (or never admitted): a further failure is no new eviction
    tried_at: float | None = None
    # Keys the worker was attested with lately (older ones' KMS sessions have expired).
    keys: deque[bytes] = field(default_factory=lambda: deque(maxlen=KEYS_KEPT))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When workers are attested."""

    reattest_every: float = 60.0
    retry_every: float = 5.0
    attest_timeout: float = 10.0


class TeePool[L: Attestable]:
    """The configured workers, each in rotation only while attested."""

    def __init__(
        self,
        workers: Sequence[tuple[WorkerSpec, L]],
        *,
        registry: Registry,
        audit: Auditor,
        verification: Verification,
        schedule: Schedule | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: Callable[[int], bytes] = random_bytes,
    ) -> None:
        if not workers:
            raise ValueError("tee pool: no worker configured")
        labels = [spec.label for spec, _ in workers]
        if len(set(labels)) != len(labels):
            raise ValueError("tee pool: a worker is configured twice")
        self._slots = [_Slot(spec, link) for spec, link in workers]
        self._registry = registry
        self._audit = audit
        self._verification = verification
        self._schedule = schedule or Schedule()
        self._monotonic = monotonic
        self._rng = rng
        self._turn = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._urgent: set[_Slot[L]] = set()
        self._background: set[asyncio.Task[None]] = set()

    # ---- rotation -------------------------------------------------------

    def members(self) -> tuple[Member[L], ...]:
        """The workers in rotation now."""
        return tuple(s.member for s in self._slots if s.member is not None)

    @property
    def ready(self) -> bool:
        """Whether at least one worker is in rotation."""
        return any(s.member is not None for s in self._slots)

    def pick(self) -> Member[L]:
        """The next member, round robin; PoolUnavailable when none is left."""
        members = self.members()
        if not members:
            raise PoolUnavailable("tee: no attested worker is available")
        return members[next(self._turn) % len(members)]

    # ---- life cycle -----------------------------------------------------

    async def start(self) -> None:
        """Attest every worker once, then keep them attested in the background."""
        await self.refresh(everyone=True)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tee-pool-reattest")

    async def close(self) -> None:
        """Stop re-attesting (members stay as they are; nobody is revoked)."""
        task, self._task = self._task, None
        for t in [*self._background, *([task] if task is not None else [])]:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._schedule.retry_every)
            try:
                await self.refresh()
            except Exception:  # a bug must not end re-attestation: members would never expire
                log.exception("tee: re-attestation round failed")
                for slot in self._slots:
                    await self._evict(slot, "error", "re-attestation round failed", set())

    async def refresh(self, *, everyone: bool = False) -> None:
        """Attest every worker that is due (all of them with ``everyone``), concurrently."""
        now = self._monotonic()
        due = [s for s in self._slots if everyone or self._due(s, now)]
        await asyncio.gather(*(self._attest(s) for s in due))

    def _due(self, slot: _Slot[L], now: float) -> bool:
        if slot.member is not None:
            return now - slot.member.attested_at >= self._schedule.reattest_every
        return slot.tried_at is None or now - slot.tried_at >= self._schedule.retry_every

    async def evict(self, member: Member[L], check: str, detail: str) -> None:
        """Take ``member`` out of rotation (e.g. a job found it unreachable) until it re-attests."""
        for slot in self._slots:
            if slot.member is member:
                async with slot.lock:
                    if slot.member is member:
                        await self._evict(slot, check, detail, set())
                return

    def reattest_soon(self, member: Member[L]) -> None:
        """Re-attest ``member`` now in the background (a job found its key stale)."""
        for slot in self._slots:
            if slot.member is member and slot not in self._urgent:
                self._urgent.add(slot)
                task = asyncio.create_task(self._attest_urgent(slot), name="tee-pool-reattest-now")
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _attest_urgent(self, slot: _Slot[L]) -> None:
        try:
            await self._attest(slot)
        finally:
            self._urgent.discard(slot)

    # ---- one worker -----------------------------------------------------

    async def _attest(self, slot: _Slot[L]) -> None:
        async with slot.lock:
            slot.tried_at = self._monotonic()
            nonce = self._rng(NONCE_SIZE)
            answer: AttestAnswer | None = None
            try:
                async with asyncio.timeout(self._schedule.attest_timeout):
                    entry = await self._registry.get_tee(slot.spec.tee_id)
                    answer = await slot.link.attest(nonce)
                    admission = await verify_answer(
                        answer,
                        entry,
                        tee_id=slot.spec.tee_id,
                        nonce=nonce,
                        verification=self._verification,
                    )
            except EvidenceRefused as e:
                await self._refused(slot, answer, e.check, e.detail)
                return
            except TimeoutError:
                await self._refused(slot, answer, "timeout", "no answer in time")
                return
            except (WorkerRefusal, KeyBrokerRefused) as e:  # e.g. the KMS would not attest it
                await self._refused(slot, answer, "refused", _code(e))
                return
            except (GatewayError, AuditError, OSError, ValueError) as e:  # KMS or worker down
                await self._refused(slot, answer, "unavailable", _code(e))
                return
            try:
                await self._record(slot, answer, platform=entry.platform)
            except Exception:  # an admission that cannot be audited does not happen
                await self._refused(slot, answer, "audit", "the admission could not be audited")
                return
            self._admit(slot, admission)

    def _admit(self, slot: _Slot[L], admission: Admission) -> None:
        back = slot.out
        slot.member = Member(slot.spec, slot.link, admission, self._monotonic())
        slot.out = False
        slot.keys.append(admission.public_key)
        ATTESTED.set(len(self.members()))
        if back:
            log.info("tee: worker admitted", extra={"worker": slot.spec.label})

    async def _refused(
        self, slot: _Slot[L], answer: AttestAnswer | None, check: str, detail: str
    ) -> None:
        ATTESTATIONS.labels(slot.spec.tee_id, "refused").inc()
        if answer is not None:  # the worker answered: this is an attestation result
            try:
                await self._audit.emit(
                    "tee.attest",
                    tee_id=slot.spec.tee_id,
                    worker=slot.spec.label,
                    result="refused",
                    check=check,
                    detail=detail,
                    generation=answer.generation,
                )
            except Exception:  # the refusal stands; the log says its audit failed
                log.error(
                    "tee: audit of a refused attestation failed",
                    extra={"worker": slot.spec.label, "error": check},
                )
        fresh = {answer.public_key} if answer is not None else set()
        await self._evict(slot, check, detail, fresh)

    async def _record(self, slot: _Slot[L], answer: AttestAnswer, *, platform: str) -> None:
        await self._audit.emit(
            "tee.attest",
            tee_id=slot.spec.tee_id,
            worker=slot.spec.label,
            platform=platform,
            result="admitted",
            generation=answer.generation,
        )
        ATTESTATIONS.labels(slot.spec.tee_id, "admitted").inc()

    async def _evict(self, slot: _Slot[L], check: str, detail: str, fresh: set[bytes]) -> None:
        """Out of rotation; audit, count, alert and revoke on the transition only."""
        keys = {*slot.keys, *fresh}
        slot.keys.clear()
        was_in = slot.member is not None or not slot.out
        slot.member = None
        slot.out = True
        ATTESTED.set(len(self.members()))
        revoked = await self._revoke(slot.spec, keys)
        if not was_in:
            return
        EVICTIONS.labels(slot.spec.tee_id, check).inc()
        log.warning(
            "tee: worker evicted from the pool (%s: %s)",
            check,
            detail,
            extra={"worker": slot.spec.label, "error": check},
        )
        try:
            await self._audit.emit(
                "tee.evict",
                tee_id=slot.spec.tee_id,
                worker=slot.spec.label,
                check=check,
                detail=detail,
                revoked=revoked,
            )
        except Exception:  # the eviction stands; the log says its audit failed
            log.error("tee: audit of an eviction failed", extra={"worker": slot.spec.label})

    async def _revoke(self, spec: WorkerSpec, keys: Iterable[bytes]) -> bool:
        """Ask the KMS to revoke every known key of the worker; False if any call failed."""
        ok = True
        for key in keys:
            try:
                async with asyncio.timeout(self._schedule.attest_timeout):
                    await self._registry.revoke(spec.tee_id, worker_key=key)
            except (GatewayError, OSError, TimeoutError) as e:
                ok = False
                log.error(
                    "tee: the KMS did not revoke an evicted worker's key",
                    extra={"worker": spec.label, "error": type(e).__name__},
                )
        return ok


def _code(error: Exception) -> str:
    """A fixed word for an error (its code, else its type): never its message."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else type(error).__name__
