"""Which deployments ``tokengate attest verify --deployment/--all`` checks, and with what.

Everything comes from the gateway config that ``tokengate serve`` reads: the
workers of ``tee.workers`` (TEE id and address), the KMS that holds the
registry (``tee.kms``: URL, credential, TLS) and whether the simulated TEE is
accepted (``tee.insecure_simulated_tee`` with ``tee.sim_key``), exactly as
the gateway's pool uses them (:mod:`proxy.teesetup`). A ``--deployment`` id
the config does not list is a usage error: the command reaches only workers
the gateway itself would use, at the addresses it would use. Several workers
may share one TEE id; each is checked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import click

from policy.errors import PolicyError
from proxy.cli.attest_deploy import Deployment, DeploymentVerdict, check_all, summary
from proxy.teeconfig import TeeConfig, TeeWorkerConfig
from tee.admission import Attestable, Verification
from tokengate.errors import GatewayError


class ConfigProblem(click.ClickException):
    """The gateway config cannot say what to check (exit status 2, like a usage error)."""

    exit_code = 2


def select(workers: Sequence[TeeWorkerConfig], ids: Sequence[str], every: bool) -> list[Deployment]:
    """The configured workers named by ``ids`` (all of them with ``every``), in config order."""
    if every:
        return [Deployment(w.id, w.address) for w in workers]
    known = {w.id for w in workers}
    if unknown := [i for i in dict.fromkeys(ids) if i not in known]:
        raise ConfigProblem(
            f"attest: {', '.join(unknown)}: not a TEE id of tee.workers in the gateway config"
        )
    wanted = set(ids)
    return [Deployment(w.id, w.address) for w in workers if w.id in wanted]


def load_tee(config_path: Path) -> tuple[TeeConfig, Path]:
    """The ``tee:`` section of the gateway config and its data dir (ConfigProblem if none)."""
    from proxy.settings import load_settings

    if not config_path.is_file():
        raise ConfigProblem(f"attest: no gateway config at {config_path} (use --config)")
    try:
        settings = load_settings(config_path)
    except PolicyError as e:
        raise ConfigProblem("invalid configuration:\n  " + "\n  ".join(e.problems)) from e
    if settings.gateway.tee is None:
        raise ConfigProblem("attest: the gateway config has no tee: section (no workers)")
    return settings.gateway.tee, settings.data_dir


def run_deployments(
    config_path: Path, ids: Sequence[str], every: bool, timeout: float, as_json: bool
) -> int:
    """Check the chosen deployments, print the report; the exit status (0: all verified)."""
    from proxy.teesetup import verification_of

    tee, data_dir = load_tee(config_path)
    deployments = select(tee.workers, ids, every)
    try:
        verification = verification_of(tee, data_dir)
    except GatewayError as e:
        raise ConfigProblem(str(e)) from e
    results = asyncio.run(_check(tee, data_dir, deployments, verification, timeout))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        click.echo("\n\n".join(r.text() for r in results))
        if len(results) > 1:
            click.echo("\n" + summary(results))
    return 0 if results and all(r.verified for r in results) else 1


async def _check(
    tee: TeeConfig,
    data_dir: Path,
    deployments: Sequence[Deployment],
    verification: Verification,
    seconds: float,
) -> list[DeploymentVerdict]:
    from tee.broker_client import BrokerClient
    from tee.worker_client import WorkerClient

    async with AsyncExitStack() as stack:
        try:
            registry = BrokerClient.from_config(tee.kms, base=data_dir)
        except GatewayError as e:  # e.g. the credential file is missing or too open
            raise ConfigProblem(str(e)) from e
        stack.push_async_callback(registry.close)
        targets: list[tuple[Deployment, Attestable]] = []
        for d in deployments:
            client = WorkerClient(d.address, timeout=seconds, attest_timeout=seconds)
            stack.push_async_callback(client.close)
            targets.append((d, client))
        return await check_all(targets, registry, verification=verification, attest_timeout=seconds)
