"""The gateway's public origin as the browser sees it.

Behind a TLS-terminating ingress the gateway itself speaks plain HTTP, so
its own scheme and Host are not what the browser used. ``X-Forwarded-Proto``
and ``X-Forwarded-Host`` say what it was, and are believed only from a
configured trusted proxy. The default port is dropped, so the origin
compares exactly with a browser's ``Origin`` and with registered redirect
URIs.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from proxy.headers import IPNetwork, is_trusted

_DEFAULT_PORTS = {"http": "80", "https": "443"}
PUBLIC_ORIGIN = web.RequestKey("public_origin", str)


def public_origin(request: web.Request, trusted: Sequence[IPNetwork]) -> str:
    """``scheme://host[:port]`` of this request as the browser sent it."""
    scheme, host = request.scheme, request.host
    if is_trusted(request.remote, trusted):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in _DEFAULT_PORTS:
            scheme = proto
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip() or host
    name, sep, port = host.lower().rpartition(":")
    if sep and port == _DEFAULT_PORTS[scheme]:
        host = name
    return f"{scheme}://{host.lower()}"
