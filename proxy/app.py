"""Assembly of the public gateway application, in one visible place."""

from __future__ import annotations

from aiohttp import web

from kms_client import KeyManager
from proxy import middlewares
from proxy.authn.gate import Gate
from proxy.fieldsetup import FieldRuntime
from proxy.handler import handle
from proxy.state import FIELDS, GATE, KEYS, LIVE, UPSTREAMS, Live
from proxy.upstreams import UpstreamPool


def build_app(
    live: Live,
    pool: UpstreamPool,
    keys: KeyManager,
    gate: Gate,
    fields: FieldRuntime | None = None,
) -> web.Application:
    """The public application: middlewares outermost first, then one catch-all handler.

    ``client_max_size`` does not limit streamed bodies (the forwarder enforces
    each route's limit); it caps any body a later feature reads whole.
    """
    app = web.Application(
        middlewares=[middlewares.errors, middlewares.measure],
        client_max_size=int(live.settings.gateway.limits.max_body),
        handler_args={
            "max_field_size": live.settings.gateway.limits.max_header_bytes,
            "max_line_size": live.settings.gateway.limits.max_request_line,
            "auto_decompress": False,
        },
    )
    app[LIVE] = live
    app[UPSTREAMS] = pool
    app[KEYS] = keys
    app[GATE] = gate
    if fields is not None:
        app[FIELDS] = fields
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
