"""One gateway worker process: listeners, signals, reload, graceful drain.

Each worker binds the public and admin ports itself with SO_REUSEPORT, so N
workers share them and the kernel spreads connections. SIGTERM/SIGINT stop
accepting, let in-flight requests finish up to ``drain_timeout`` (then cancel
them), write the audit log's closing checkpoint and exit. SIGHUP reloads.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import ssl
from contextlib import AsyncExitStack
from pathlib import Path

import uvloop
from aiohttp import web

from kms_client.keysetup import audited_keys
from proxy.accesslog import WRITER as ACCESS_LOG
from proxy.accesslog import JsonAccessLogger
from proxy.admin import build_admin_app
from proxy.adminapi.app import add_admin_api
from proxy.adminapi.attest_api import add_attestation_api, simulated_key
from proxy.adminapi.token_api import add_token_api
from proxy.adminapi.token_service import VaultTokenService
from proxy.app import build_app
from proxy.auditing import GatewayAudit
from proxy.authn.setup import open_gate
from proxy.fieldsetup import VaultReady, open_fields
from proxy.keys import KeyringReady, publish_checkpoint_jwks
from proxy.protocol import GatewayRunner
from proxy.readiness import Readiness, ReadinessCheck, TcpCheck
from proxy.reload import Reloader
from proxy.settings import Settings, load_settings
from proxy.state import Live
from proxy.teesetup import TeePoolReady, open_tee
from proxy.upstreams import UpstreamPool

log = logging.getLogger("tokengate.worker")
_GC_YOUNG_THRESHOLD = 5000  # allocations between young collections (CPython's default: 700)


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    tls = settings.gateway.listen.tls
    if tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


async def _start_site(
    stack: AsyncExitStack,
    app: web.Application,
    host: str,
    port: int,
    *,
    drain: float,
    tls: ssl.SSLContext | None,
    access_log: bool = True,
) -> None:
    runner = GatewayRunner(
        app,
        shutdown_timeout=drain,
        access_log_class=JsonAccessLogger,
        # None switches aiohttp's access logging off entirely (logging.access_log: false).
        access_log=logging.getLogger("tokengate.access") if access_log else None,
        handle_signals=False,
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, port, reuse_port=True, ssl_context=tls, backlog=1024)
    await site.start()


def _settle_heap() -> None:
    """Tune the cyclic collector for serving, once everything long-lived is built."""
    # Everything built so far lives as long as the worker: keep the cyclic
    # collector from rescanning it on every request-driven collection.
    gc.collect()
    gc.freeze()
    # Under load the young generation always holds the live objects of every
    # request in flight (thousands with 64 open connections); the default
    # threshold (700) rescans them every ~20 requests, about 5% of the CPU.
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def serve(config_path: Path, *, worker_index: int = 0, workers: int = 1) -> None:
    """Run one worker until SIGTERM/SIGINT; raise PolicyError if the config is invalid."""
    settings = await asyncio.to_thread(load_settings, config_path)
    gw = settings.gateway
    live = Live(settings)
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        audit_log, keys = await stack.enter_async_context(
            audited_keys(
                keys=gw.keys,
                audit=gw.audit,
                data_dir=settings.data_dir,
                production=settings.production,
                background=True,
            )
        )
        audit = GatewayAudit(audit_log)
        gate = await stack.enter_async_context(
            open_gate(settings, keys=keys, auditor=audit_log, workers=workers)
        )
        await asyncio.to_thread(publish_checkpoint_jwks, settings, keys)
        # The TEE pool is opened once per process (a reload does not reopen it).
        tee = await stack.enter_async_context(
            open_tee(gw.tee, data_dir=settings.data_dir, audit=audit_log)
        )
        fields = await stack.enter_async_context(
            open_fields(
                vault_config=gw.vault,
                tokenization=gw.tokenization,
                data_dir=settings.data_dir,
                keys=keys,
                audit=audit_log,
                workers=workers,
                tee=tee.runner if tee is not None else None,
            )
        )
        pool = UpstreamPool()
        pool.update(gw.upstreams)
        stack.push_async_callback(pool.close)
        reloader = Reloader(live, pool, audit=audit.record_reload)

        def checks() -> list[ReadinessCheck]:
            upstreams = live.settings.gateway.upstreams.items()
            found: list[ReadinessCheck] = [TcpCheck.for_upstream(n, u) for n, u in upstreams]
            vault = VaultReady(fields.store, timeout=gw.vault.timeout)
            tee_ready = [TeePoolReady(tee.pool)] if tee is not None else []
            return [*found, *audit.readiness_checks(), KeyringReady(keys), vault, *tee_ready]

        readiness = Readiness(checks=checks)
        loop = asyncio.get_running_loop()
        background: set[asyncio.Task[object]] = set()

        def on_hup() -> None:
            task = loop.create_task(reloader.reload("SIGHUP"), name="reload-sighup")
            background.add(task)
            task.add_done_callback(background.discard)

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        # Registered before the listeners so they stop (and drain) first.
        admin_app = build_admin_app(readiness)
        if gate.service is not None:
            add_admin_api(
                admin_app,
                config=lambda: live.settings.gateway.admin.api,
                store=gate.service.store,
                auditor=audit_log,
            )
        add_token_api(
            admin_app,
            config=lambda: live.settings.gateway.admin.api,
            service=VaultTokenService(
                fields.vault, lambda: {n: c.spec for n, c in live.settings.classes.items()}
            ),
            auditor=audit_log,
        )
        add_attestation_api(
            admin_app,
            config=lambda: live.settings.gateway.admin.api,
            auditor=audit_log,
            sim_key=functools.partial(simulated_key, gw.tee, settings.data_dir),
        )
        await _start_site(stack, admin_app, gw.admin.host, gw.admin.port, drain=1.0, tls=None)
        await _start_site(
            stack,
            build_app(live, pool, keys, gate, fields),
            gw.listen.host,
            gw.listen.port,
            drain=gw.drain_timeout,
            tls=_tls_context(settings),
            access_log=gw.logging.access_log,
        )
        await audit.record_start(settings, workers=worker_index)
        _settle_heap()
        if gw.reload.watch:
            watcher = loop.create_task(reloader.watch(gw.reload.interval), name="config-watcher")
            background.add(watcher)
        log.info(
            "worker listening",
            extra={"worker": worker_index, "digest": settings.digest[:16]},
        )
        await stop.wait()
        log.info("draining", extra={"worker": worker_index})
        for task in list(background):
            task.cancel()
        await audit.record_stop("signal")
        ACCESS_LOG.flush()


def run(config_path: Path, *, worker_index: int = 0, workers: int = 1) -> None:
    """Process entry point: uvloop event loop running :func:`serve`."""
    uvloop.run(serve(config_path, worker_index=worker_index, workers=workers))
