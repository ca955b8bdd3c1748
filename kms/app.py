"""The KMS's aiohttp application, assembled in one visible place.

Middleware: JSON errors (:mod:`kms.middleware`), then the per-peer throttle
of the unauthenticated broker routes when one is given (:mod:`kms.throttling`).
State: the credential table under :data:`kms.auth.CREDENTIALS`. Routes: the registry and broker
(:class:`kms.api.BrokerRoutes`), the remote-root operations when a root
service is given (:func:`kms.root_api.add_root_routes`), and two probes
without authentication: ``GET /healthz`` (the process answers) and ``GET
/readyz`` (200 only while ``ready()`` holds: keyring unsealed, audit log
usable).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from kms.api import BrokerRoutes
from kms.auth import CREDENTIALS, CredentialTable
from kms.middleware import error_response, json_errors
from kms.root_api import add_root_routes
from kms.root_service import RootService


def build_app(
    routes: BrokerRoutes,
    credentials: CredentialTable,
    *,
    root: RootService | None = None,
    ready: Callable[[], bool] = lambda: True,
    throttle: Middleware | None = None,
) -> web.Application:
    """The KMS application (not yet running)."""
    middlewares: list[Middleware] = [json_errors] if throttle is None else [json_errors, throttle]
    app = web.Application(middlewares=middlewares, client_max_size=routes.max_body)
    app[CREDENTIALS] = credentials
    routes.add_to(app)
    if root is not None:
        add_root_routes(app, root, routes.root_caller)  # 401/403 audited as kms.refuse

    async def healthz(_: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.StreamResponse:
        if ready():
            return web.json_response({"status": "ready"})
        return error_response(503, "not_ready", "kms: not ready (sealed or audit log unusable)")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
