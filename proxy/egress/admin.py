"""The relay's admin listener: liveness, readiness and the relay's Prometheus metrics.

Rules:
- Served only when ``egress.admin`` is configured, on its own port (loopback
  by default), never through the proxy listener.
- ``/.tokengate/healthz`` and ``/.tokengate/readyz`` are the gateway's own
  handlers (:mod:`proxy.admin`); readiness runs the gateway's checks of what
  the relay needs to release a value: the keyring unsealed, the vault store
  answering, the audit log writable (503 JSON naming the failed checks).
- ``/.tokengate/metrics`` is the relay's registry
  (:class:`~proxy.egress.metrics.EgressMetrics`), not the gateway's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from audit.log import AuditLog
from kms_client.manager import KeyManager
from proxy.admin import READINESS, healthz, readyz
from proxy.egress.config import EgressAdmin
from proxy.egress.metrics import EgressMetrics
from proxy.fieldsetup import FieldRuntime, VaultReady
from proxy.keys import KeyringReady
from proxy.readiness import Readiness, ReadinessCheck

METRICS = web.AppKey("egress_metrics", EgressMetrics)


def relay_readiness(
    *, keys: KeyManager, fields: FieldRuntime, audit: AuditLog, vault_timeout: float
) -> Readiness:
    """The relay is ready when it could release a value: keyring, vault store, audit log."""
    checks: tuple[ReadinessCheck, ...] = (
        KeyringReady(keys),
        VaultReady(fields.store, timeout=vault_timeout),
        audit.readiness_check(),
    )
    return Readiness(checks=lambda: checks)


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus exposition text of the relay."""
    body = request.app[METRICS].render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


def build_relay_admin_app(readiness: Readiness, metrics: EgressMetrics) -> web.Application:
    """The admin application: one route per probe, plus metrics."""
    app = web.Application()
    app[READINESS] = readiness
    app[METRICS] = metrics
    app.router.add_get("/.tokengate/healthz", healthz)
    app.router.add_get("/.tokengate/readyz", readyz)
    app.router.add_get("/.tokengate/metrics", metrics_view)
    return app


@asynccontextmanager
async def serve_admin(config: EgressAdmin, app: web.Application) -> AsyncIterator[tuple[str, int]]:
    """Listen on ``config``'s address until the block exits; yields the bound (host, port)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port, *_ = runner.addresses[0]
        yield str(host), int(port)
    finally:
        await runner.cleanup()
