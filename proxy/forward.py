"""Forwarding one HTTP request upstream and streaming the answer back.

Routes without field rules never buffer: the request body is read chunk by
chunk and written upstream as it arrives, the response likewise, with
backpressure on both sides, so memory stays bounded whatever the body size.
(A Content-Length answer that has wholly arrived with its headers, already in
memory, leaves in one write with them.)
Routes with field rules (a :class:`BodyFilter`) or ``sign_body`` buffer the
request within the route's limit; a filter may also buffer and rewrite the
response within its limit, before any of it is sent. The body limit is
checked on the declared Content-Length before connecting and on the bytes
actually read.

Failure rules: refused or unreachable upstream -> 502, timeout -> 504, body
over the limit -> 413, all before the response starts. Once response bytes
have gone to the client, a failure can only abort the connection: the client
must see a broken message, never a clean end of a truncated body.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from proxy.errors import ProxyError
from proxy.headers import FORWARDING, ClientView, set_forwarding, strip_hop_by_hop

log = logging.getLogger("tokengate.forward")
CHUNK = 64 * 1024
_NO_BODY_STATUS = frozenset((204, 304))


class BodyTooLarge(Exception):
    """The client sent more body bytes than the route allows."""


class RequestHooks(Protocol):
    """Per-request work around forwarding: proofs on the way up, cookies on the way down."""

    @property
    def buffered(self) -> bool:
        """Read the whole body (within the limit) before forwarding, e.g. to sign its digest."""
        ...

    def prepare(
        self, headers: CIMultiDict[str], *, method: str, target: str, body: bytes | None
    ) -> None:
        """Complete the upstream request headers (identity, signature, ...); may raise."""
        ...

    async def on_response(self, status: int, resp: web.StreamResponse) -> None:
        """Adjust the client response headers before they are sent; may raise to refuse it."""
        ...


class BodyFilter(Protocol):
    """Field rules around forwarding: rewrite the buffered request, then maybe the response.

    Both methods get the headers to adjust in place (content type, encoding and
    length stay consistent with the bytes they return) and may raise a
    GatewayError to refuse the message before anything is sent on.
    """

    @property
    def response_limit(self) -> int:
        """Most response body bytes buffered for rewriting (more -> 502)."""
        ...

    async def on_request(
        self, headers: CIMultiDict[str], target: str, body: bytes | None
    ) -> tuple[str, bytes | None]:
        """The request target and body to send upstream."""
        ...

    def wants_response(self, status: int, headers: Mapping[str, str]) -> bool:
        """True if the response with these headers must be buffered and rewritten."""
        ...

    async def on_response(self, status: int, headers: CIMultiDict[str], body: bytes) -> bytes:
        """The response body to send to the client."""
        ...


@dataclass(frozen=True, slots=True)
class ForwardPlan:
    """Everything the forwarder needs to know about one request."""

    base_url: str  # the upstream's scheme://authority (and base path)
    target: str  # the raw path and query sent upstream
    upstream_host: str
    body_limit: int
    connect_timeout: float
    read_timeout: float
    trusted_peer: bool
    request_id: str
    hooks: RequestHooks | None = None
    filter: BodyFilter | None = None

    @property
    def url(self) -> str:
        """The upstream URL of the request as received."""
        return self.base_url + self.target


class LimitedBody:
    """The client's body as an async iterator that stops past ``limit`` bytes.

    aiohttp's client wraps an exception raised while sending a body into a
    connection error, so the limiter also remembers that it fired.
    """

    def __init__(self, stream: aiohttp.StreamReader, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.exceeded = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._stream.iter_any():
            seen += len(chunk)
            if seen > self._limit:
                self.exceeded = True
                raise BodyTooLarge
            yield chunk


# Dropped from the client's headers: replaced below (forwarding headers by set_forwarding).
_REQUEST_DROP = ("Host", "Expect", "Content-Length", *FORWARDING)


def upstream_headers(request: web.Request, plan: ForwardPlan) -> CIMultiDict[str]:
    """The request headers as the upstream sees them."""
    out = strip_hop_by_hop(request.headers, drop=_REQUEST_DROP)
    out["Host"] = plan.upstream_host
    view = ClientView(peer=request.remote, scheme=request.scheme, host=request.host)
    set_forwarding(out, request.headers, view, trusted=plan.trusted_peer)
    out["X-Request-ID"] = plan.request_id
    length = request.content_length
    if length is not None:
        out["Content-Length"] = str(length)
    return out


def _response_headers(up: aiohttp.ClientResponse) -> CIMultiDict[str]:
    return strip_hop_by_hop(up.headers, drop=("Content-Length",))


@functools.lru_cache(maxsize=64)
def _timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """The client timeouts of a route (immutable: one object per distinct pair)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, connect=connect, sock_read=read)


async def forward(
    request: web.Request, session: aiohttp.ClientSession, plan: ForwardPlan
) -> web.StreamResponse:
    """Send ``request`` upstream per ``plan`` and stream the answer to the client."""
    declared = request.content_length
    if declared is not None and declared > plan.body_limit:
        raise ProxyError("payload_too_large", "declared content-length over the route limit")
    body = LimitedBody(request.content, plan.body_limit) if request.body_exists else None
    headers = upstream_headers(request, plan)
    data: AsyncIterator[bytes] | bytes | None = body.__aiter__() if body is not None else None
    target = plan.target
    buffered: bytes | None = None
    if plan.filter is not None:
        raw = await _read_all(body) if body is not None else None
        target, buffered = await plan.filter.on_request(headers, target, raw)
        data = buffered
    elif plan.hooks is not None and plan.hooks.buffered:
        buffered = await _read_all(body) if body is not None else b""
        data = buffered
        headers["Content-Length"] = str(len(buffered))
    if plan.hooks is not None:
        # Field-rule routes are buffered routes: their proof covers the body's digest.
        signed = b"" if buffered is None and plan.filter is not None else buffered
        plan.hooks.prepare(headers, method=request.method, target=target, body=signed)
    timeout = _timeout(plan.connect_timeout, plan.read_timeout)
    try:
        async with session.request(
            request.method,
            plan.base_url + target,
            headers=headers,
            data=data,
            allow_redirects=False,
            timeout=timeout,
        ) as upstream:
            return await _relay(request, upstream, plan)
    except BodyTooLarge as e:
        raise ProxyError("payload_too_large", "streamed body over the route limit") from e
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        if body is not None and body.exceeded:
            raise ProxyError("payload_too_large", "streamed body over the route limit") from e
        raise _upstream_error(e) from e


async def _read_all(body: LimitedBody) -> bytes:
    """The whole body, within the limit (413 above it)."""
    try:
        return b"".join([chunk async for chunk in body])
    except BodyTooLarge as e:
        raise ProxyError("payload_too_large", "buffered body over the route limit") from e


def _upstream_error(e: BaseException) -> ProxyError:
    """Map a client-side failure talking to the upstream onto a public error."""
    if isinstance(e, aiohttp.ServerTimeoutError | TimeoutError):
        return ProxyError("upstream_timeout", type(e).__name__)
    if isinstance(e, aiohttp.ClientResponseError):
        return ProxyError("bad_gateway", f"upstream response rejected: {type(e).__name__}")
    return ProxyError("upstream_unavailable", type(e).__name__)


class _WholeResponse(web.StreamResponse):
    """A relayed answer whose whole body is in hand: status line, headers and body
    leave in ONE write (aiohttp holds the headers back until the body when this
    class attribute is False, as its own ``web.Response`` does). Used only when
    nothing is left to wait for, so holding the headers never delays them."""

    _send_headers_immediately = False


async def _relay(
    request: web.Request, upstream: aiohttp.ClientResponse, plan: ForwardPlan
) -> web.StreamResponse:
    headers = _response_headers(upstream)
    headers["X-Request-ID"] = plan.request_id
    bodyless = request.method == "HEAD" or upstream.status in _NO_BODY_STATUS
    whole: bytes | None = None
    if (
        plan.filter is not None
        and not bodyless
        and plan.filter.wants_response(upstream.status, upstream.headers)
    ):
        raw = await _read_response(upstream, plan.filter.response_limit)
        whole = await plan.filter.on_response(upstream.status, headers, raw)
    elif not bodyless:
        whole = _arrived_body(upstream)
    kind = web.StreamResponse if whole is None else _WholeResponse
    resp = kind(status=upstream.status, reason=upstream.reason, headers=headers)
    if plan.hooks is not None:
        await plan.hooks.on_response(upstream.status, resp)
    if whole is not None:
        resp.content_length = len(whole)
        await _send(request, resp, whole)
        return resp
    length = upstream.content_length
    if length is not None and not bodyless:
        resp.content_length = length
    elif bodyless and "Content-Length" in upstream.headers:
        resp.headers["Content-Length"] = upstream.headers["Content-Length"]
    try:
        await resp.prepare(request)
        if bodyless:
            await resp.write_eof()
            return resp
        async for chunk in upstream.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionResetError as e:
        # aiohttp raises its ClientConnectionResetError (a ConnectionResetError)
        # when *our client* went away while we wrote: not an upstream failure.
        raise ClientGone from e
    except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError) as e:
        # Bytes already went out: the only honest signal left is a broken connection.
        log.warning(
            "upstream failed mid-response; aborting client connection",
            extra={"request_id": plan.request_id, "error": type(e).__name__},
        )
        if request.transport is not None:
            request.transport.abort()
        raise StreamAborted from e
    return resp


def _arrived_body(upstream: aiohttp.ClientResponse) -> bytes | None:
    """The whole body of a Content-Length answer if all of it has already arrived.

    Small answers usually come in the same read as their headers; sending them
    as one piece saves a write on both sides. Anything else (chunked, or still
    arriving) streams. A body the parser refused is a 502: nothing was sent yet.
    """
    if upstream.content_length is None or not upstream.content.is_eof():
        return None
    try:
        return upstream.content.read_nowait()
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as e:
        raise _upstream_error(e) from e


async def _read_response(upstream: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole upstream body for rewriting; over ``limit`` -> 502 (nothing sent yet)."""
    if upstream.content_length is not None and upstream.content_length > limit:
        raise ProxyError("bad_gateway", "upstream response over the rewrite limit")
    chunks: list[bytes] = []
    seen = 0
    try:
        async for chunk in upstream.content.iter_any():
            seen += len(chunk)
            if seen > limit:
                raise ProxyError("bad_gateway", "upstream response over the rewrite limit")
            chunks.append(chunk)
    except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError) as e:
        raise _upstream_error(e) from e
    return b"".join(chunks)


async def _send(request: web.Request, resp: web.StreamResponse, body: bytes) -> None:
    """Write a complete body (rewritten, or all arrived) with the headers."""
    try:
        await resp.prepare(request)
        await resp.write_eof(body)
    except ConnectionResetError as e:
        raise ClientGone from e


class StreamAborted(Exception):
    """The response had started when the upstream failed; the connection was aborted."""


class ClientGone(Exception):
    """The client closed its connection before the response was written."""
