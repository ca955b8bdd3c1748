"""``tokengate attest verify --deployment``: attest deployed workers afresh against the registry.

Rules:
- The platform, reference measurements, debug and TCB policy come from the
  KMS registry's entry for the deployment's TEE id, never from the worker or
  its evidence (:func:`tee.admission.verify_answer`, the check the gateway's
  pool makes).
- Each check uses a fresh 32-byte nonce from the project's RNG; the worker
  binds it and a NEW public key into its evidence. Like a pool
  re-attestation, this rotates the worker's key pair (the previous key stays
  usable for the worker's grace period).
- A registry or worker that cannot answer in time is a refused deployment
  (checks ``registry``, ``worker``, ``unreachable``, ``timeout``), never
  skipped; only a verified deployment counts as verified.
- Read-only for the gateway: no audit entry, no eviction, no KMS revoke.
  Error texts shown are fixed words or codes, never a server's message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kms_client.rng import random_bytes
from tee.admission import (
    Attestable,
    AttestAnswer,
    TeeEntry,
    Verification,
    check_entry,
    verify_answer,
)
from tee.attestation import Platform
from tee.binding import NONCE_SIZE
from tee.errors import EvidenceRefused, KeyBrokerRefused, WorkerRefusal
from tee.report import Verdict
from tokengate.errors import GatewayError


class RegistryReader(Protocol):
    """The KMS call this check makes (``tee.broker_client``)."""

    async def get_tee(self, tee_id: str) -> TeeEntry:
        """The registry entry of ``tee_id``."""
        ...


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployed worker: the registry id of its TEE and where it listens."""

    tee_id: str
    address: str

    @property
    def label(self) -> str:
        """How the report names it."""
        return f"{self.tee_id}@{self.address}"


@dataclass(frozen=True, slots=True)
class DeploymentVerdict:
    """The outcome for one deployment: a Verdict once the registry named the platform."""

    deployment: Deployment
    verdict: Verdict | None = None
    failed: EvidenceRefused | None = None  # set when the check stopped before a verdict
    generation: int | None = None  # the worker key generation the evidence binds

    @property
    def verified(self) -> bool:
        """True only for a verified verdict."""
        return self.verdict is not None and self.verdict.verified

    @property
    def check(self) -> str | None:
        """The failed check, or None when verified."""
        if self.verdict is not None and self.verdict.refused is not None:
            return self.verdict.refused.check
        return self.failed.check if self.failed is not None else None

    def as_dict(self) -> dict[str, object]:
        """One element of the ``--json`` list."""
        head: dict[str, object] = {
            "deployment": self.deployment.tee_id,
            "address": self.deployment.address,
            "generation": self.generation,
        }
        if self.verdict is not None:
            return {**head, **self.verdict.as_dict()}
        failed = self.failed or EvidenceRefused("unknown", "no verdict")
        return {
            **head,
            "source": self.deployment.label,
            "platform": None,
            "verdict": "refused",
            "failed_check": failed.check,
            "reason": failed.detail,
        }

    def text(self) -> str:
        """The readable report of this deployment."""
        if self.verdict is not None:
            lines = [self.verdict.text(), "  policy        the KMS registry entry"]
            if self.generation is not None:
                lines.append(f"  worker key    generation {self.generation}")
            return "\n".join(lines)
        failed = self.failed or EvidenceRefused("unknown", "no verdict")
        return "\n".join(
            [
                f"{self.deployment.label}: REFUSED",
                "  platform      unknown (the registry entry was not read)",
                f"  failed check  {failed.check}: {failed.detail}",
            ]
        )


def summary(results: Sequence[DeploymentVerdict]) -> str:
    """One line for a batch: counts, and each refused deployment with its check."""
    ok = sum(r.verified for r in results)
    line = f"attest: {len(results)} deployments: {ok} verified, {len(results) - ok} refused"
    refused = [f"{r.deployment.tee_id} ({r.check})" for r in results if not r.verified]
    return line + (": " + ", ".join(refused) if refused else "")


async def check_deployment(
    deployment: Deployment,
    link: Attestable,
    registry: RegistryReader,
    *,
    verification: Verification,
    attest_timeout: float = 10.0,
    rng: Callable[[int], bytes] = random_bytes,
) -> DeploymentVerdict:
    """Attest ``deployment`` with a fresh nonce and verify it against its registry entry."""
    deadline = asyncio.get_running_loop().time() + attest_timeout
    try:
        async with asyncio.timeout_at(deadline):
            entry = await _entry(registry, deployment.tee_id)
        platform = Platform(entry.platform)
    except EvidenceRefused as e:
        return DeploymentVerdict(deployment, failed=e)
    except TimeoutError:
        return DeploymentVerdict(deployment, failed=EvidenceRefused("timeout", "no answer in time"))
    except ValueError:
        refused = EvidenceRefused("registry", "the registry entry names an unknown platform")
        return DeploymentVerdict(deployment, failed=refused)
    at = verification.now()
    nonce = rng(NONCE_SIZE)
    answer: AttestAnswer | None = None
    try:
        check_entry(entry, deployment.tee_id)  # a retired TEE's worker is not even asked
        async with asyncio.timeout_at(deadline):
            answer = await _attest(link, nonce)
        fixed = Verification(
            insecure_simulated_tee=verification.insecure_simulated_tee,
            sim_key=verification.sim_key,
            now=lambda: at,
        )
        admission = await verify_answer(
            answer, entry, tee_id=deployment.tee_id, nonce=nonce, verification=fixed
        )
    except (EvidenceRefused, TimeoutError) as e:
        refusal = e if isinstance(e, EvidenceRefused) else EvidenceRefused("timeout", "no answer")
        verdict = Verdict(platform, at, refused=refusal, source=deployment.label)
    else:
        verdict = Verdict(platform, at, claims=admission.claims, source=deployment.label)
    generation = answer.generation if answer is not None else None
    return DeploymentVerdict(deployment, verdict, generation=generation)


async def _entry(registry: RegistryReader, tee_id: str) -> TeeEntry:
    try:
        return await registry.get_tee(tee_id)
    except KeyBrokerRefused as e:
        if e.status == 404:
            raise EvidenceRefused("registry", "the KMS registry has no such TEE") from e
        raise EvidenceRefused("registry", f"the KMS registry refused ({e.code})") from e
    except (GatewayError, OSError, ValueError) as e:
        raise EvidenceRefused("registry", f"the KMS registry cannot answer ({_code(e)})") from e


async def _attest(link: Attestable, nonce: bytes) -> AttestAnswer:
    try:
        return await link.attest(nonce)
    except WorkerRefusal as e:
        raise EvidenceRefused("worker", f"the worker refused to attest ({e.code})") from e
    except (GatewayError, OSError, ValueError) as e:
        raise EvidenceRefused("unreachable", f"the worker cannot answer ({_code(e)})") from e


def _code(error: Exception) -> str:
    """A fixed word for an error (its code, else its type): never its message."""
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else type(error).__name__


async def check_all(
    targets: Sequence[tuple[Deployment, Attestable]],
    registry: RegistryReader,
    *,
    verification: Verification,
    attest_timeout: float = 10.0,
) -> list[DeploymentVerdict]:
    """Every deployment checked concurrently; results in the order given."""
    return list(
        await asyncio.gather(
            *(
                check_deployment(
                    d, link, registry, verification=verification, attest_timeout=attest_timeout
                )
                for d, link in targets
            )
        )
    )
