"""Opening the TEE pool at worker start: worker clients, the KMS client, the pool and its runner.

With a ``tee:`` section, each gateway worker process opens its own pool:
every configured TEE worker is attested once before the listeners open (a
worker that fails is out of rotation and retried every ``retry_every``), then
re-attested in the background. The gateway starts even when no TEE worker
is attested yet: the ``tee`` action answers 503 and readiness reports the
pool not ready, so an orchestrator holds traffic until one is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kms_client.audit_port import Auditor
from proxy.teeconfig import TeeConfig
from tee.admission import Verification
from tee.broker_client import BrokerClient
from tee.jobs import JobLink, JobRunner
from tee.pool import Schedule, TeePool, WorkerSpec
from tee.sim import load_public_key
from tee.worker_client import WorkerClient


@dataclass(frozen=True, slots=True)
class TeeRuntime:
    """The open pool of one gateway process and the job runner the ``tee`` action uses."""

    pool: TeePool[JobLink]
    runner: JobRunner


@dataclass(frozen=True, slots=True)
class TeePoolReady:
    """Readiness: at least one TEE worker is attested and in rotation."""

    pool: TeePool[JobLink]
    name: str = "tee"

    async def check(self) -> bool:
        """True while the pool can take a job (no IO: the pool's own state)."""
        return self.pool.ready


def load_sim_key(path: Path) -> Ed25519PublicKey:
    """The development public key of simulated evidence (PEM, public or private)."""
    return load_public_key(path, setting="tee.sim_key")


def verification_of(config: TeeConfig, data_dir: Path) -> Verification:
    """How the pool checks evidence: the sim key only when the simulated TEE is allowed."""
    if not config.insecure_simulated_tee:
        return Verification()
    path = config.sim_key if config.sim_key.is_absolute() else data_dir / config.sim_key
    return Verification(insecure_simulated_tee=True, sim_key=load_sim_key(path))


@asynccontextmanager
async def open_tee(
    config: TeeConfig | None, *, data_dir: Path, audit: Auditor
) -> AsyncIterator[TeeRuntime | None]:
    """Open the pool (attesting every worker once) and its runner; close both on exit."""
    if config is None:
        yield None
        return
    verification = verification_of(config, data_dir)
    async with AsyncExitStack() as stack:
        broker = BrokerClient.from_config(config.kms, base=data_dir)
        stack.push_async_callback(broker.close)
        links: list[tuple[WorkerSpec, JobLink]] = []
        for w in config.workers:
            client = WorkerClient(
                w.address, timeout=config.job_timeout, attest_timeout=config.attest_timeout
            )
            stack.push_async_callback(client.close)
            links.append((WorkerSpec(w.id, w.address), client))
        pool: TeePool[JobLink] = TeePool(
            links,
            registry=broker,
            audit=audit,
            verification=verification,
            schedule=Schedule(
                reattest_every=config.reattest_every,
                retry_every=config.retry_every,
                attest_timeout=config.attest_timeout,
            ),
        )
        stack.push_async_callback(pool.close)
        await pool.start()
        runner = JobRunner(
            pool,
            broker,
            grant_ttl=config.grant_ttl,
            timeout=config.job_timeout,
            default_tenant=config.default_tenant,
        )
        yield TeeRuntime(pool=pool, runner=runner)
