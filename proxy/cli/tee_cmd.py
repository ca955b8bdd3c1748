"""``tokengate tee worker|measure``: run a TEE worker; print a job bundle's measurement.

``worker`` loads the bundle (measured once, run from the measured bytes),
makes its X25519 key pair in memory and serves ``/v1/info``, ``/v1/attest``
and ``/v1/jobs/{job}`` on a unix socket or loopback TCP until SIGTERM/SIGINT
(docs/tee-protocol.md). Each key is attested to the KMS (``--kms``), which
releases the one-time key of every job only to an attested key; with
``--kms-cert``/``--kms-key`` the worker presents a client certificate to a
KMS that requires mTLS.

Only the simulated TEE exists in this build; it must be asked for by name
(``--insecure-simulated-tee``) and says so loudly at start. Nothing secret
is printed: the listen address, the TEE id, the measurement and the job names.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proxy.logs import setup_logging
from tee.address import WorkerAddress
from tee.bundle import Bundle, load_bundle, measure
from tee.sim import KEY_FILE, load_or_create_key
from tee.worker.app import DEFAULT_MAX_BODY
from tee.worker.attester import SimAttester
from tee.worker.kbs import KbsClient, check_kms_url, worker_tls
from tee.worker.keys import KeyRing
from tee.worker.server import serve
from tee.worker.service import Worker
from tokengate.errors import GatewayError

BUNDLE_OPTION = click.option(
    "--bundle",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="job bundle: a .py file or a package directory defining JOBS",
)


def register(cli: click.Group) -> None:
    """Attach ``tee``."""
    cli.add_command(tee)


@click.group()
def tee() -> None:
    """Run a TEE worker and measure job bundles."""


@tee.command("measure")
@BUNDLE_OPTION
@click.option("--json", "as_json", is_flag=True, help="print {measurement, files} as JSON")
def measure_cmd(bundle: Path, as_json: bool) -> None:
    """Print the bundle's measurement (SHA-384 hex) as the KMS registry lists it."""
    try:
        value = measure(bundle).hex()
    except GatewayError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps({"measurement": value, "bundle": str(bundle)}))
    else:
        click.echo(value)


@tee.command("worker")
@BUNDLE_OPTION
@click.option("--tee-id", required=True, help="this TEE's id in the KMS registry")
@click.option(
    "--listen",
    required=True,
    help="unix:/path/to.sock or 127.0.0.1:PORT (loopback only unless --insecure-non-loopback)",
)
@click.option(
    "--kms", "kms_url", required=True, help="KMS key broker URL (https, or loopback http)"
)
@click.option(
    "--kms-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA bundle that signs the KMS's TLS certificate",
)
@click.option(
    "--kms-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM client certificate presented to the KMS (mTLS; with --kms-key)",
)
@click.option(
    "--kms-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key of --kms-cert",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help=f"state directory (the simulated TEE's development key: DATA_DIR/{KEY_FILE})",
)
@click.option(
    "--insecure-simulated-tee",
    is_flag=True,
    help="run as a SIMULATED TEE signed by a development key: no hardware guarantee",
)
@click.option(
    "--insecure-non-loopback",
    is_flag=True,
    help="allow --listen on a non-loopback address (anyone reaching it can rotate keys)",
)
@click.option("--grace", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="seconds a replaced key still opens envelopes")  # fmt: skip
@click.option("--job-timeout", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="seconds one job may run")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="jobs run at once (threads)")  # fmt: skip
@click.option("--max-body", type=click.IntRange(min=1024), default=DEFAULT_MAX_BODY,
              show_default=True, help="largest request body in bytes")  # fmt: skip
@click.option("--socket-mode", default="660", show_default=True,
              help="permissions of a unix socket (octal)")  # fmt: skip
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))  # fmt: skip
def worker_cmd(
    bundle: Path,
    tee_id: str,
    listen: str,
    kms_url: str,
    kms_ca: Path | None,
    kms_cert: Path | None,
    kms_key: Path | None,
    data_dir: Path,
    insecure_simulated_tee: bool,
    insecure_non_loopback: bool,
    grace: float,
    job_timeout: float,
    concurrency: int,
    max_body: int,
    socket_mode: str,
    log_level: str,
) -> None:
    """Serve a job bundle as a TEE worker until SIGTERM."""
    if not insecure_simulated_tee:
        raise click.UsageError(
            "this build has no hardware attester: only the simulated TEE "
            "(--insecure-simulated-tee) is available"
        )
    try:
        address = WorkerAddress.parse(listen)
        check_kms_url(kms_url)
        if (kms_cert is None) != (kms_key is None):
            raise ValueError("--kms-cert and --kms-key go together (both or neither)")
        mode = int(socket_mode, 8)
    except (GatewayError, ValueError) as e:
        raise click.UsageError(str(e)) from e
    setup_logging(log_level)
    click.echo(
        f"WARNING: simulated TEE: no hardware guarantee. Anyone who can read "
        f"{data_dir / KEY_FILE} can forge this worker's evidence.",
        err=True,
    )
    try:
        loaded = load_bundle(bundle)
        sim_key = load_or_create_key(data_dir)
    except GatewayError as e:
        raise click.ClickException(str(e)) from e
    try:
        ssl_context = worker_tls(ca=kms_ca, cert=kms_cert, key=kms_key)
    except GatewayError as e:
        raise click.ClickException(str(e)) from e
    options = _Options(grace, job_timeout, concurrency, max_body, mode, insecure_non_loopback)
    try:
        asyncio.run(_run(loaded, tee_id, address, kms_url, ssl_context, sim_key, options))
    except GatewayError as e:
        raise click.ClickException(str(e)) from e


@dataclass(frozen=True, slots=True)
class _Options:
    """The worker's tunables, carried as one value."""

    grace: float
    job_timeout: float
    concurrency: int
    max_body: int
    socket_mode: int
    insecure_non_loopback: bool


async def _run(
    bundle: Bundle,
    tee_id: str,
    address: WorkerAddress,
    kms_url: str,
    ssl_context: ssl.SSLContext | None,
    sim_key: Ed25519PrivateKey,
    options: _Options,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    attester = SimAttester(sim_key, bundle.measurement)
    jobs = ", ".join(sorted(bundle.jobs))

    def ready(listening: str) -> None:
        click.echo(
            f"tokengate tee worker: listening on {listening}; tee id {tee_id}; "
            f"platform sim; measurement {bundle.measurement.hex()}; jobs {jobs}"
        )
        sys.stdout.flush()

    async with aiohttp.ClientSession(trust_env=False) as http:
        broker = KbsClient(
            kms_url, tee_id=tee_id, attester=attester, http=http, ssl_context=ssl_context
        )
        worker = Worker(
            tee_id=tee_id,
            bundle=bundle,
            attester=attester,
            broker=broker,
            keys=KeyRing(grace=options.grace),
            job_timeout=options.job_timeout,
            max_concurrency=options.concurrency,
        )
        await serve(
            worker,
            address,
            stop,
            max_body=options.max_body,
            socket_mode=options.socket_mode,
            insecure_non_loopback=options.insecure_non_loopback,
            on_ready=ready,
        )
    click.echo("tokengate tee worker: stopped")
