"""The admin listener: liveness, readiness and Prometheus metrics.

It runs on its own port so that none of it is reachable through the public
listener's routes. Later capabilities add their admin API here.
"""

from __future__ import annotations

from aiohttp import web

from proxy import metrics
from proxy.readiness import Readiness

READINESS = web.AppKey("readiness", Readiness)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Every dependency is reachable: 200, else 503 naming the failed checks."""
    results = await request.app[READINESS].evaluate()
    ready = all(results.values())
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {k: "ok" if v else "failed" for k, v in results.items()},
    }
    return web.json_response(body, status=200 if ready else 503)


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus exposition text."""
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


def build_admin_app(readiness: Readiness) -> web.Application:
    """The admin application; one route per operational endpoint."""
    app = web.Application()
    app[READINESS] = readiness
    app.router.add_get("/.tokengate/healthz", healthz)
    app.router.add_get("/.tokengate/readyz", readyz)
    app.router.add_get("/.tokengate/metrics", metrics_view)
    return app
