"""Running the KMS service: open everything in the one safe order, serve, close in reverse.

Order: credentials and production checks (no IO beyond reading files), the
audit log and the KMS's own keyring through the gateway's machinery
(:func:`kms_client.keysetup.audited_keys`: same root backends, same auto-unseal,
same control socket for ``tokengate kms unseal``), then the registry, broker
and remote-root tables (one ``store`` URI), then the HTTP(S) listener. Named
background tasks purge expired broker rows and write the aggregated
``kms.throttled`` counts of the per-peer throttle (:mod:`kms.throttling`). On SIGTERM/SIGINT the
listener stops first, then the stores, then the audit log (final
checkpoint) and the keyring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kms.api import BrokerRoutes
from kms.app import build_app
from kms.auditing import KmsAudit
from kms.auth import CredentialTable
from kms.broker import Broker
from kms.broker_store import open_broker_store
from kms.config import KmsSettings, TlsConfig
from kms.credentials import load_credentials
from kms.production import production_problems
from kms.root_service import RootService
from kms.root_table import open_root_table
from kms.tees import TeeAdmin
from kms.throttle import PeerThrottle
from kms.throttling import report_loop, report_pending, throttle_middleware
from kms.verification import EvidenceChecker, load_sim_key
from kms_client.keysetup import audited_keys
from policy.errors import PolicyError
from tee import sim
from tee.registry import open_registry
from tokengate.errors import ConfigError

log = logging.getLogger("tokengate.kms")


def load_credential_table(settings: KmsSettings) -> CredentialTable:
    """The credentials file as a lookup table; ConfigError naming every problem."""
    path = settings.credentials_path
    if not path.exists() and not settings.production:
        log.warning("kms: %s does not exist: every authenticated call will be refused", path)
        return CredentialTable(())
    try:
        return load_credentials(path).table()
    except PolicyError as e:
        raise ConfigError("kms: invalid credentials file: " + "; ".join(e.problems)) from e


def evidence_checker(settings: KmsSettings) -> EvidenceChecker:
    """The checker, with the development key only when simulated TEEs are allowed."""
    if not settings.config.insecure_simulated_tee:
        return EvidenceChecker()
    log.warning("kms: insecure_simulated_tee is on: simulated evidence proves nothing")
    key: Ed25519PublicKey
    if settings.sim_key_path == settings.data_dir / sim.KEY_FILE:
        key = sim.load_or_create_key(settings.data_dir).public_key()  # shared with local workers
    else:
        key = load_sim_key(settings.sim_key_path)
    return EvidenceChecker(insecure_simulated_tee=True, sim_key=key)


def server_tls(tls: TlsConfig, settings: KmsSettings) -> ssl.SSLContext:
    """The listener's TLS context (TLS 1.2+; client certificates required with ``client_ca``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            settings.config_relative(tls.cert), settings.config_relative(tls.key)
        )
        if tls.client_ca is not None:
            context.load_verify_locations(settings.config_relative(tls.client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"kms: listen.tls: cannot load the TLS files ({type(e).__name__})") from e
    return context


@asynccontextmanager
async def open_service(
    settings: KmsSettings, *, now: Callable[[], datetime] | None = None
) -> AsyncIterator[web.Application]:
    """The KMS application over open stores, an unsealed keyring and the audit log."""
    cfg = settings.config
    clock = now or (lambda: datetime.now(UTC))
    credentials = await asyncio.to_thread(load_credential_table, settings)
    if settings.production:
        problems = production_problems(settings, credentials=len(credentials))
        if problems:
            raise ConfigError("kms: production mode refuses:\n  " + "\n  ".join(problems))
    checker = await asyncio.to_thread(evidence_checker, settings)
    async with (
        audited_keys(
            keys=cfg.keys_for_kms(),
            audit=cfg.audit,
            data_dir=settings.data_dir,
            production=settings.production,
            background=True,
        ) as (audit_log, manager),
        AsyncExitStack() as stack,
    ):
        data_dir, schema, timeout = settings.data_dir, cfg.store_schema, cfg.store_timeout
        registry = open_registry(cfg.store, data_dir=data_dir, schema=schema, timeout=timeout)
        store = open_broker_store(cfg.store, data_dir=data_dir, schema=schema, timeout=timeout)
        table = open_root_table(cfg.store, data_dir=data_dir, schema=schema, timeout=timeout)
        for part in (registry, store, table):
            await part.open()
            stack.push_async_callback(part.close)
        audit = KmsAudit(audit_log)
        broker = Broker(
            registry=registry,
            store=store,
            keys=manager,
            audit=audit,
            checker=checker,
            settings=cfg.broker,
            now=clock,
        )
        routes = BrokerRoutes(
            broker, TeeAdmin(registry, broker, audit, now=clock), audit, cfg.max_body
        )
        limits = cfg.broker
        throttle = PeerThrottle(
            rate=limits.unauthenticated_rate,
            burst=limits.burst,
            max_peers=limits.throttle_peers,
            report_every=limits.throttle_report_every,
        )
        app = build_app(
            routes,
            credentials,
            root=RootService(table, manager, audit_log, now=clock),
            ready=lambda: not manager.is_sealed and audit_log.usable,
            throttle=throttle_middleware(throttle, audit),
        )
        tasks = [
            asyncio.create_task(_purge_loop(broker, limits.purge_every), name="tg-kms-purge"),
            asyncio.create_task(
                report_loop(throttle, audit, limits.throttle_report_every),
                name="tg-kms-throttle-report",
            ),
        ]
        try:
            yield app
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await report_pending(throttle, audit)  # before the audit log closes


async def serve(settings: KmsSettings, *, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or SIGINT; ``announce`` gets the URL once listening."""
    cfg = settings.config
    tls = server_tls(cfg.listen.tls, settings) if cfg.listen.tls is not None else None
    async with open_service(settings) as app:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, cfg.listen.host, cfg.listen.port, ssl_context=tls)
            await site.start()
            port = runner.addresses[0][1]
            announce(f"kms: serving on {'https' if tls else 'http'}://{cfg.listen.host}:{port}")
            await _until_signalled()
        finally:
            await runner.cleanup()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _purge_loop(broker: Broker, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await broker.purge()
        except Exception as e:  # the next round retries; refusals never depend on purging
            log.warning("kms: purging expired broker rows failed (%s)", type(e).__name__)
