"""Running one job in the TEE pool: grant, double envelope, worker call, sealed answer.

Rules (docs/tee-protocol.md, "The double envelope"):
- One call sends one batch (all values of one message for one rule) as ONE
  job to ONE worker, picked round robin from the attested members.
- The KMS grant (the one-time key K2) is asked for exactly
  ``(tee_id, worker key, job, tenant, request id, expiry)``; the KMS refuses
  a worker it has not attested itself, whatever the gateway says.
- The envelope is sealed to the worker's attested key with a fresh response
  key R that only this call holds: an answer that does not open under R is
  refused, so nobody else on the worker's socket can read or forge it.
- Every failure (no worker, KMS refusal, worker error, malformed or wrong
  answer) raises :class:`JobFailed` (503): the caller fails closed. A worker
  that cannot be reached is evicted until it attests again. Messages name
  the job and the stage, never a value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from audit.errors import AuditError
from tee.admission import Attestable
from tee.envelope import Binding, open_response, seal
from tee.errors import JobRefused, TeeError, WorkerError
from tee.pool import PoolUnavailable, TeePool
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.tee")
STALE = frozenset({"stale_key"})  # worker refusals that mean "attest me again"


class JobFailed(TeeError):
    """A TEE job could not be run or its answer was not acceptable: fail closed (503)."""

    code = "tee_unavailable"


class Grant(Protocol):
    """The KMS's answer to ``POST /v1/broker/grants``."""

    @property
    def grant_id(self) -> str: ...

    @property
    def key(self) -> bytes: ...

    @property
    def expires_at(self) -> int: ...


class Granting(Protocol):
    """The KMS call a job needs (``tee.broker_client``)."""

    async def grant(
        self,
        *,
        tee_id: str,
        worker_key: bytes,
        job: str,
        tenant: str,
        request_id: str,
        ttl: int,
    ) -> Grant:
        """A one-time key bound to the job, released to the worker once."""
        ...


class JobLink(Attestable, Protocol):
    """A worker client that can attest and run jobs."""

    async def run_job(self, job: str, envelope: Mapping[str, object]) -> object:
        """POST the envelope to ``/v1/jobs/{job}``; the sealed response document."""
        ...


class JobRunner:
    """Runs jobs on the pool's attested workers (the ``tee`` action's dependency)."""

    def __init__(
        self,
        pool: TeePool[JobLink],
        broker: Granting,
        *,
        grant_ttl: int = 60,
        timeout: float = 30.0,
        default_tenant: str = "default",
    ) -> None:
        self._pool = pool
        self._broker = broker
        self._ttl = grant_ttl
        self._timeout = timeout
        self._default_tenant = default_tenant

    async def run(
        self, job: str, values: Sequence[str], *, tenant: str, request_id: str
    ) -> list[str]:
        """The job's results for ``values`` (same length, same order); JobFailed otherwise.

        A message without a tenant (no tenant claim, no route tenant) runs
        as ``default_tenant``: the KMS registry must list it for the TEE.
        """
        tenant = tenant or self._default_tenant
        try:
            member = self._pool.pick()
        except PoolUnavailable as e:
            raise JobFailed(f"tee: job {job}: no attested worker") from e
        spec = member.spec
        stage = "grant"
        try:
            async with asyncio.timeout(self._timeout):
                grant = await self._broker.grant(
                    tee_id=spec.tee_id,
                    worker_key=member.public_key,
                    job=job,
                    tenant=tenant,
                    request_id=request_id,
                    ttl=self._ttl,
                )
                stage = "seal"
                binding = Binding(
                    tee_id=spec.tee_id,
                    worker_key=member.public_key,
                    job=job,
                    tenant=tenant,
                    request_id=request_id,
                    grant_id=grant.grant_id,
                    expires_at=grant.expires_at,
                )
                sealed = seal(binding, grant.key, values)
                stage = "worker"
                response = await member.link.run_job(job, sealed.envelope)
                stage = "response"
                out = open_response(binding, sealed.response_key, response)
        except WorkerError as e:
            await self._pool.evict(member, "unreachable", f"a {job} job could not reach it")
            raise JobFailed(f"tee: job {job}: worker {spec.label}: unreachable") from e
        except JobRefused as e:
            if e.code in STALE:  # the worker moved on to a newer key: attest it again now
                self._pool.reattest_soon(member)
            raise JobFailed(f"tee: job {job}: worker {spec.label} refused ({e.code})") from e
        except TimeoutError as e:
            raise JobFailed(f"tee: job {job}: {stage}: no answer in time") from e
        except (GatewayError, AuditError, OSError, ValueError) as e:
            raise JobFailed(f"tee: job {job}: {stage}: {_code(e)}") from e
        if len(out) != len(values):
            raise JobFailed(f"tee: job {job}: the worker answered a different number of values")
        return out


def _code(error: Exception) -> str:
    code = getattr(error, "code", None)
    return code if isinstance(code, str) else type(error).__name__
