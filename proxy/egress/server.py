"""``tokengate egress serve``: open what the relay needs, in order, and run it until a signal.

Order (each step fails the start with a message naming its cause):
gateway.yaml and its field classes; the egress policy files (every problem
at once); the audit log and the unsealed keyring (:func:`kms_client.keysetup.audited_keys`);
the vault store and the rate limiter (:func:`proxy.fieldsetup.open_fields`,
the gateway's own); the relay's CA from the keyring store (made on first
start); the listener; the admin listener when ``egress.admin`` is set
(:mod:`proxy.egress.admin`). Only then is ``egress.start`` written; shutdown
writes ``egress.stop`` and closes in reverse order. SIGHUP reloads the routes
and clients (:mod:`proxy.egress.reload`).

A relay without clients is refused at start: every call would be 407.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from audit.log import AuditLog
from kms_client.keysetup import audited_keys
from kms_client.manager import KeyManager
from kms_client.secrets import WrappedSecrets
from proxy.cli.gatewayfile import load_gateway_file
from proxy.egress.addon import EgressAddon
from proxy.egress.admin import build_relay_admin_app, relay_readiness, serve_admin
from proxy.egress.ca import CA_PURPOSE, RelayCa, load_or_create_ca
from proxy.egress.clients import ClientTable
from proxy.egress.compile import EgressTable, load_egress
from proxy.egress.metrics import EgressMetrics
from proxy.egress.relay import Relay, RelaySettings
from proxy.egress.reload import EgressReloader
from proxy.fieldsetup import FieldRuntime, open_fields
from proxy.logs import setup_logging
from tokengate import __version__
from tokengate.errors import ConfigError

log = logging.getLogger("tokengate.egress")


@dataclass(frozen=True, slots=True)
class RunningEgress:
    """A relay that listens, and what it runs on."""

    relay: Relay
    ca: RelayCa
    table: EgressTable  # the routes at start; a reload swaps them in the addon
    keys: KeyManager
    fields: FieldRuntime
    audit: AuditLog
    metrics: EgressMetrics
    admin_address: tuple[str, int] | None  # None: no egress.admin listener
    reloader: EgressReloader


@asynccontextmanager
async def open_egress(
    config_path: Path, *, background: bool = True
) -> AsyncIterator[RunningEgress]:
    """Open everything and start listening; stop and close it all on exit.

    ``background`` starts the keyring's refresh task and control socket (the
    command does; tests may not).
    """
    gf = await asyncio.to_thread(load_gateway_file, config_path)
    egress = gf.gateway.egress
    if not egress.clients:
        raise ConfigError(
            "egress.clients: no client may call the relay (add one: tokengate egress client create)"
        )
    table = await asyncio.to_thread(load_egress, egress, gf.config_path.parent, gf.classes)
    settings = RelaySettings.of(gf, table)
    async with AsyncExitStack() as stack:
        audit_log, keys = await stack.enter_async_context(
            audited_keys(
                keys=gf.gateway.keys,
                audit=gf.gateway.audit,
                data_dir=gf.data_dir,
                production=gf.production,
                background=background,
            )
        )
        fields = await stack.enter_async_context(
            open_fields(
                vault_config=gf.vault,
                tokenization=gf.gateway.tokenization,
                data_dir=gf.data_dir,
                keys=keys,
                audit=audit_log,
                workers=1,
            )
        )
        ca = await load_or_create_ca(
            WrappedSecrets(keys, purpose=CA_PURPOSE),
            common_name=egress.ca_common_name,
            audit=audit_log,
            actor="egress",
        )
        await asyncio.to_thread(settings.dhparam.parent.mkdir, parents=True, exist_ok=True)
        metrics = EgressMetrics()
        addon = EgressAddon(
            table=table,
            clients=ClientTable(egress.clients),
            runtime=fields,
            unlisted_hosts=egress.unlisted_hosts,
            metrics=metrics,
        )
        relay = Relay(addon, ca, settings)
        await relay.start()
        stack.push_async_callback(relay.stop)
        admin_address = None
        if egress.admin is not None:
            readiness = relay_readiness(
                keys=keys, fields=fields, audit=audit_log, vault_timeout=gf.vault.timeout
            )
            admin_app = build_relay_admin_app(readiness, metrics)
            admin_address = await stack.enter_async_context(serve_admin(egress.admin, admin_app))
        await audit_log.emit(
            "egress.start",
            version=__version__,
            routes=len(table),
            clients=len(egress.clients),
            unlisted_hosts=egress.unlisted_hosts,
            ca_fingerprint=ca.fingerprint,
        )
        stack.push_async_callback(audit_log.emit, "egress.stop", reason="shutdown")
        reloader = EgressReloader(
            config_path, addon=addon, audit=audit_log, started=gf, settings=settings
        )
        yield RunningEgress(
            relay, ca, table, keys, fields, audit_log, metrics, admin_address, reloader
        )


async def serve(config_path: Path) -> None:
    """Run the relay until SIGTERM or SIGINT; reload its routes and clients on SIGHUP.

    The SIGHUP handler is in place before the relay listens (a SIGHUP's default
    action would end the process); one that comes in while starting or while
    a reload runs is applied once afterwards.
    """
    stop, hup = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hup.set)
    async with open_egress(config_path) as running:
        reloads = loop.create_task(_reload_on(hup, running.reloader), name="egress-reload")
        host, port = running.relay.address
        log.info(
            "egress relay listening on %s:%d (%d routes, CA %s)",
            host,
            port,
            len(running.table),
            running.ca.fingerprint[:16],
        )
        if running.admin_address is not None:
            log.info("egress admin listening on %s:%d", *running.admin_address)
        await stop.wait()
        log.info("egress relay stopping")
        reloads.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reloads


async def _reload_on(hup: asyncio.Event, reloader: EgressReloader) -> None:
    """Reload each time ``hup`` is set (several signals during one reload: one more reload)."""
    while True:
        await hup.wait()
        hup.clear()
        await reloader.reload("SIGHUP")


def serve_main(config_path: Path) -> None:
    """Process entry point: JSON logs on stderr, then :func:`serve`."""
    gf = load_gateway_file(config_path)
    setup_logging(gf.gateway.logging.level)
    asyncio.run(serve(config_path))
