"""Attesting one worker for the gateway's pool: registry entry + fresh nonce + evidence -> admitted.

Rules (docs/tee-protocol.md, "Gateway side"):
- The platform, the reference measurements, the debug and TCB policy come
  from the KMS registry's entry for the worker's TEE id, never from the
  worker or its evidence; the verifier is chosen by that platform.
- Every attestation uses a fresh 32-byte nonce from the project's RNG and
  the public key the worker returns with its evidence; both must be bound
  into the evidence (:func:`tee.binding.expectation`).
- An entry that is not ``active``, that lists no reference measurement, or
  that is recorded under another id is refused: with no measurement to
  compare, any code would pass.
- Any failure raises :class:`~tee.errors.EvidenceRefused` naming the check;
  the worker is then not (or no longer) attested. Nothing here does audit,
  metrics or eviction: that is :mod:`tee.pool`'s concern.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tee.attestation import Claims, Platform, Policy, check_measurements
from tee.binding import NONCE_SIZE, expectation
from tee.errors import BindingError, EvidenceRefused
from tee.verifiers import verifier_for


class TeeEntry(Protocol):
    """A KMS registry entry as the pool reads it (``GET /v1/tees/{id}``)."""

    @property
    def id(self) -> str: ...

    @property
    def platform(self) -> str: ...

    @property
    def measurements(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def allow_debug(self) -> bool: ...

    @property
    def accepted_tcb(self) -> Sequence[str]: ...

    @property
    def status(self) -> str: ...


class AttestAnswer(Protocol):
    """A worker's answer to ``POST /v1/attest`` (the claimed platform is ignored)."""

    @property
    def evidence(self) -> bytes: ...

    @property
    def public_key(self) -> bytes: ...

    @property
    def generation(self) -> int: ...


class Attestable(Protocol):
    """The part of a worker client the pool uses to attest it."""

    async def attest(self, nonce: bytes) -> AttestAnswer:
        """Ask the worker for evidence binding a NEW key pair and ``nonce``."""
        ...


@dataclass(frozen=True, slots=True)
class Verification:
    """How evidence is checked: sim opt-in and the development key, the clock."""

    insecure_simulated_tee: bool = False
    sim_key: Ed25519PublicKey | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Admission:
    """What a successful attestation proved about a worker."""

    public_key: bytes  # the worker's attested X25519 key: envelopes are sealed to it
    generation: int
    platform: Platform
    claims: Claims


def policy_of(entry: TeeEntry) -> Policy:
    """The verifier policy the registry entry states; an entry with no measurement is refused."""
    measurements = {
        name: frozenset(v.lower() for v in values)
        for name, values in entry.measurements.items()
        if values
    }
    if not measurements:
        raise EvidenceRefused("registry", "the registry entry lists no reference measurement")
    return Policy(
        allow_debug=entry.allow_debug,
        accepted_tcb=frozenset(entry.accepted_tcb) or frozenset({"UpToDate"}),
        measurements=measurements,
    )


def check_entry(entry: TeeEntry, tee_id: str) -> None:
    """The entry is the one asked for and may be used."""
    if entry.id != tee_id:
        raise EvidenceRefused("registry", "the registry answered for another TEE id")
    if entry.status != "active":
        raise EvidenceRefused("retired", "the registry entry is not active")


async def verify_answer(
    answer: AttestAnswer,
    entry: TeeEntry,
    *,
    tee_id: str,
    nonce: bytes,
    verification: Verification,
) -> Admission:
    """Check ``answer`` (evidence for ``nonce``) against ``entry``; else EvidenceRefused."""
    if len(nonce) != NONCE_SIZE:
        raise EvidenceRefused("nonce", "the pool's nonce has the wrong size")
    check_entry(entry, tee_id)
    policy = policy_of(entry)
    verifier = verifier_for(
        entry.platform,
        insecure_simulated_tee=verification.insecure_simulated_tee,
        sim_key=verification.sim_key,
    )
    try:
        expect = expectation(verifier.platform, nonce, answer.public_key)
    except BindingError as e:
        raise EvidenceRefused("public_key", "the worker's public key has the wrong shape") from e
    # Verifiers are synchronous and some walk certificate chains: off the event loop.
    claims = await asyncio.to_thread(
        verifier.verify,
        answer.evidence,
        expect=expect,
        now=verification.now(),
        policy=policy,
    )
    # Belt and braces: the registry's policy is checked here too, not only inside
    # each verifier, so a verifier that forgot one check cannot admit a worker.
    if claims.debug and not policy.allow_debug:
        raise EvidenceRefused("debug", "the TEE runs in debug mode")
    if claims.tcb_status not in policy.accepted_tcb:
        raise EvidenceRefused("tcb", "the TCB status is not accepted")
    check_measurements(claims.measurements, policy)
    if claims.public_key is not None and claims.public_key != answer.public_key:
        raise EvidenceRefused("public_key", "the evidence binds another key")
    return Admission(
        public_key=answer.public_key,
        generation=answer.generation,
        platform=verifier.platform,
        claims=claims,
    )
