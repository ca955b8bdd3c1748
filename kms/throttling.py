"""The per-peer throttle applied to the KMS's unauthenticated broker routes, and its audit.

``POST /v1/broker/challenge`` and ``POST /v1/broker/attest`` take no
credential (the evidence is the credential), so anyone who reaches the KMS
can call them. :func:`throttle_middleware` takes one token per call from the
caller's bucket (:class:`kms.throttle.PeerThrottle`, keyed by the socket
peer, never ``X-Forwarded-For``) and answers 429 ``too_many_requests`` with
``Retry-After`` past the limit. Those refusals are not audited one by one
(that is the flood): each peer's count goes into one ``kms.throttled`` entry
at most once per ``report_every`` seconds, and :func:`report_loop` drains the
rest. Authenticated routes are not throttled here.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from kms.auditing import KmsAudit
from kms.errors import Unavailable
from kms.middleware import error_response
from kms.throttle import PeerThrottle, peer_key

log = logging.getLogger("tokengate.kms.throttle")

UNAUTHENTICATED: Final = frozenset({"/v1/broker/challenge", "/v1/broker/attest"})

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def remote_peer(request: web.Request) -> str:
    """The throttle key of the request's socket peer (forwarding headers are ignored)."""
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    address = peername[0] if isinstance(peername, tuple) and peername else None
    return peer_key(address if isinstance(address, str) else None)


def throttle_middleware(
    throttle: PeerThrottle, audit: KmsAudit, *, paths: frozenset[str] = UNAUTHENTICATED
) -> Middleware:
    """A middleware limiting calls to ``paths`` per peer; other paths pass untouched."""

    @web.middleware
    async def throttled(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in paths:
            return await handler(request)
        peer = remote_peer(request)
        wait = throttle.take(peer)
        if wait is None:
            return await handler(request)
        count = throttle.refuse(peer)
        if count is not None:
            await _report(audit, peer, count)
        response = error_response(429, "too_many_requests", "kms: too many requests; retry later")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response

    return throttled


async def report_loop(throttle: PeerThrottle, audit: KmsAudit, every: float) -> None:
    """Every ``every`` seconds, one ``kms.throttled`` entry per peer with unreported refusals."""
    while True:
        await asyncio.sleep(every)
        await report_pending(throttle, audit)


async def report_pending(throttle: PeerThrottle, audit: KmsAudit) -> None:
    """Write the unreported refusal counts now (also called at shutdown)."""
    for peer, count in throttle.drain():
        await _report(audit, peer, count)


async def _report(audit: KmsAudit, peer: str, count: int) -> None:
    """One aggregated entry; a failure to persist it is logged (the calls were refused anyway)."""
    try:
        await audit.emit("kms.throttled", peer=peer, count=count)
    except Unavailable:
        log.warning("kms: %d throttled calls of one peer could not be audited", count)
