"""The relay's mitmproxy addon: who may call, where to, and the field rules of every call.

Rules, in the order a call meets them:
1. ``CONNECT`` carries ``Proxy-Authorization`` of a configured client, or the
   answer is 407 (the client is then bound to that connection, and each
   request on it re-checks that the client is still configured with that
   secret: a reload that removes it cuts its open tunnels off). A target no
   egress route names is refused (403) unless ``unlisted_hosts: tunnel``,
   where its bytes pass untouched (:meth:`EgressAddon.next_layer`: no TLS
   interception, no rules, nothing released).
2. Each request inside an intercepted tunnel is refused unless it is https
   to a third party whose certificate verified (the TLS addon never skips
   verification; a failed handshake refuses the call before any rule runs),
   its Host header and TLS server name are the CONNECT target, its path has
   no dot segment or encoded slash, dot, backslash or NUL (routes match the
   decoded path, the raw one goes out: both must agree), it asks for no
   protocol upgrade, its body is within the route's limit, and an egress
   route takes it (method, path).
3. The route's request rules run on the message (tokens detokenized behind
   the release gates of :mod:`proxy.egress.release`; every release audited
   before it leaves). Only when they succeed does the call go out, with the
   rewritten headers, query and body.
4. The third party's answer goes through the route's response rules
   (tokenize) before the backend sees it; an answer they cannot read is
   refused (502): the backend must never receive a value the rules could not
   inspect.
Fail closed by construction: the request hook first sets a refusal as the
answer and only clears it once every step above succeeded, so an exception
anywhere (vault, keyring, audit, a bug) answers an error and forwards nothing,
even though mitmproxy logs and swallows exceptions raised by addons. Errors
are JSON (:mod:`proxy.egress.errors`); logs carry ids, route names, hosts and
status codes, never a header, a body or a path. Every call's outcome, every
refusal's code and the values released on calls sent on are counted in the
relay's :class:`~proxy.egress.metrics.EgressMetrics` (config names and codes
only).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from mitmproxy import connection, http
from mitmproxy.proxy import layer, layers

from audit.errors import AuditError
from plugins.base import ActionContext, Direction, Subject
from policy.message import Message
from proxy.egress.clients import Client, ClientTable
from proxy.egress.compile import EgressRules, EgressTable
from proxy.egress.errors import EgressError, failure_kind, refusal, refusal_code
from proxy.egress.flows import header_list, mitm_headers, same_target
from proxy.egress.metrics import EgressMetrics
from proxy.egress.release import EgressAuditor, release_budget
from proxy.fieldsetup import FieldRuntime
from proxy.paths import unsafe_target
from tokengate.errors import GatewayError

log = logging.getLogger("tokengate.egress")

_CALL = "tokengate.egress"  # flow.metadata key of the call's _Call
_ROUTE = "tokengate.egress.route"  # flow.metadata key of the matched route's name (metrics)
_STRIPPED = ("Proxy-Authorization", "Proxy-Connection")
_BODY_DIGESTS = ("Content-Digest", "Repr-Digest", "Digest", "Content-MD5")


@dataclass(frozen=True, slots=True)
class _Call:
    """What the response hook needs of an admitted call."""

    route: EgressRules
    client: Client
    host: str  # the CONNECT target (the route's host may be a wildcard)
    port: int
    request_id: str
    started: float
    released: dict[str, int] = field(default_factory=dict)  # field class -> values released


class EgressAddon:
    """Authentication, the allow list and the egress routes' field rules, as one mitmproxy addon."""

    name = "tokengate_egress"

    def __init__(
        self,
        *,
        table: EgressTable,
        clients: ClientTable,
        runtime: FieldRuntime,
        unlisted_hosts: Literal["refuse", "tunnel"],
        metrics: EgressMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self.metrics = metrics if metrics is not None else EgressMetrics()
        self._clients = clients
        self._runtime = runtime
        self._tunnel = unlisted_hosts == "tunnel"
        self._clock = clock
        self._authed: weakref.WeakKeyDictionary[connection.Client, Client] = (
            weakref.WeakKeyDictionary()
        )

    def replace_rules(
        self,
        *,
        table: EgressTable,
        clients: ClientTable,
        unlisted_hosts: Literal["refuse", "tunnel"],
    ) -> None:
        """Serve new routes and clients from the next hook on (a reload; one synchronous swap).

        Not named ``update``: mitmproxy would take that for its own event hook.

        Calls already admitted finish under the rules they were admitted by;
        connections bound to a client that is gone are refused from their next
        request on (:meth:`ClientTable.current`).
        """
        self._table = table
        self._clients = clients
        self._tunnel = unlisted_hosts == "tunnel"

    @property
    def table(self) -> EgressTable:
        """The routes now served."""
        return self._table

    # -- hooks ------------------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """Authenticate the client and check the target before any tunnel opens."""
        request_id = flow.id
        client = self._clients.authenticate(flow.request.headers.get_all("Proxy-Authorization"))
        if client is None:
            self._refused(flow, "proxy_auth_required", request_id)
            return
        self._authed[flow.client_conn] = client
        host, port = flow.request.host, flow.request.port
        if not self._tunnel and not self._table.host_allowed(host, port):
            log.info(
                "egress: CONNECT to an unlisted host refused",
                extra={"request_id": request_id, "upstream": f"{host}:{port}"},
            )
            self._refused(flow, "host_not_allowed", request_id)

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """With ``unlisted_hosts: tunnel``, unlisted CONNECT targets pass untouched."""
        address = nextlayer.context.server.address
        if not self._tunnel or nextlayer.layer is not None or address is None:
            return
        if not self._table.host_allowed(str(address[0]), int(address[1])):
            nextlayer.layer = layers.TCPLayer(nextlayer.context, ignore=True)
            self.metrics.call(None, "tunnelled")

    async def request(self, flow: http.HTTPFlow) -> None:
        """Admit and transform one call; anything short of success answers a refusal."""
        request_id = flow.id
        _refuse(flow, "internal_error", request_id)  # replaced below: see the module rules
        try:
            await self._admit(flow, request_id)
        except (GatewayError, AuditError) as e:
            self._refused(flow, e if isinstance(e, GatewayError) else _audit_down(), request_id)
            log.info(
                "egress: call refused: %s",
                e.code if isinstance(e, GatewayError) else "audit_unavailable",
                extra={"request_id": request_id, "status": _status(flow)},
            )
        except Exception:
            log.exception("egress: unexpected error", extra={"request_id": request_id})
            self._count_refusal(flow, "internal_error")
        else:
            flow.response = None  # admitted: mitmproxy sends the call on
            call = flow.metadata[_CALL]
            if isinstance(call, _Call):
                self.metrics.released(call.route.name, call.released)

    async def response(self, flow: http.HTTPFlow) -> None:
        """Transform the third party's answer; refuse it (502) if the rules cannot."""
        call = flow.metadata.get(_CALL)
        if not isinstance(call, _Call) or flow.response is None:
            return
        answer = flow.response
        try:
            rules = call.route.response
            if rules is not None:
                await self._transform_response(answer, call, rules.needs_body)
        except (GatewayError, AuditError) as e:
            error = e if isinstance(e, GatewayError) else _audit_down()
            self._refused(flow, error, call.request_id)
        except Exception:
            log.exception("egress: unexpected error", extra={"request_id": call.request_id})
            self._refused(flow, "internal_error", call.request_id)
        else:
            self.metrics.call(call.route.name, "sent")
        log.info(
            "egress: call",
            extra={
                "request_id": call.request_id,
                "route": call.route.name,
                "status": _status(flow),
                "duration_ms": round((time.monotonic() - call.started) * 1000, 1),
            },
        )

    async def error(self, flow: http.HTTPFlow) -> None:
        """Log a call that failed on the way (upstream unreachable, certificate, limits).

        If values were released for it, an ``egress.undelivered`` entry follows
        their ``egress.detokenize`` entries: those were written before sending,
        so without it an auditor could not tell this call from one that went out.
        """
        call = flow.metadata.get(_CALL)
        message = flow.error.msg if flow.error is not None else ""
        if isinstance(call, _Call) and flow.response is None:
            self.metrics.call(call.route.name, "failed")
        log.warning(
            "egress: call failed",
            extra={
                "request_id": flow.id,
                "route": call.route.name if isinstance(call, _Call) else None,
                "error": message[:200] or None,
            },
        )
        if isinstance(call, _Call) and call.released:
            await self._undelivered(call, message)

    async def _undelivered(self, call: _Call, message: str) -> None:
        try:
            await self._runtime.audit.emit(
                "egress.undelivered",
                host=call.host,
                port=call.port,
                route=call.route.name,
                subject=call.client.subject,
                released=sum(call.released.values()),
                error=failure_kind(message),
                request_id=call.request_id,
            )
        except AuditError as e:  # nothing left to refuse: the call has already failed
            log.error(
                "egress: audit of an undelivered call failed",
                extra={"request_id": call.request_id, "error": type(e).__name__},
            )

    # -- refusals ----------------------------------------------------------------------

    def _refused(self, flow: http.HTTPFlow, error: GatewayError | str, request_id: str) -> None:
        """Answer the refusal and count it."""
        _refuse(flow, error, request_id)
        self._count_refusal(flow, refusal_code(error))

    def _count_refusal(self, flow: http.HTTPFlow, code: str) -> None:
        route = flow.metadata.get(_ROUTE)
        self.metrics.refused(route if isinstance(route, str) else None, code)

    # -- the request path -------------------------------------------------------------

    async def _admit(self, flow: http.HTTPFlow, request_id: str) -> None:
        request = flow.request
        client = self._client_of(flow)
        if request.scheme != "https":
            raise EgressError("plain_http_refused")
        if (upstream_error := flow.server_conn.error) is not None:
            code = "upstream_certificate" if "certificate" in upstream_error.lower() else None
            raise EgressError(code or "upstream_unavailable", "third party not reachable")
        host, port = request.host.lower(), request.port
        same_target(flow, host)
        if "upgrade" in request.headers:
            raise EgressError("upgrade_refused")
        if (why := unsafe_target(request.path)) is not None:
            raise EgressError("bad_request", why)  # the third party could read it differently
        path, _, query = request.path.partition("?")
        route = self._table.match(host, port, request.method, unquote(path))
        if route is None:
            raise EgressError("route_not_allowed", f"no route for {request.method} on {host}")
        flow.metadata[_ROUTE] = route.name
        body = request.raw_content or b""
        if len(body) > route.max_body:
            raise EgressError("payload_too_large")
        for name in _STRIPPED:
            request.headers.pop(name, None)
        call = _Call(route, client, host, port, request_id, time.monotonic())
        rules = route.request
        if rules is not None:
            message = Message(
                headers=header_list(request.headers),
                body=body if rules.needs_body else b"",
                query=query,
                limit=route.max_body,
            )
            with release_budget(route.max_values):
                out = await rules.apply(message, self._context(call, "request"))
            request.headers = mitm_headers(out.headers)
            if out.query != query:
                request.path = f"{path}?{out.query}" if out.query else path
            if out.body_changed:
                request.raw_content = out.body
                for name in _BODY_DIGESTS:
                    request.headers.pop(name, None)
        flow.metadata[_CALL] = call

    def _client_of(self, flow: http.HTTPFlow) -> Client:
        bound = self._authed.get(flow.client_conn)
        if bound is not None:  # authenticated at CONNECT: still a client of the current table?
            client = self._clients.current(bound)
        else:  # absolute-form (plain HTTP) requests carry their own credentials
            client = self._clients.authenticate(flow.request.headers.get_all("Proxy-Authorization"))
        if client is None:
            raise EgressError("proxy_auth_required")
        return client

    async def _transform_response(
        self, answer: http.Response, call: _Call, needs_body: bool
    ) -> None:
        rules = call.route.response
        if rules is None:
            return
        body = answer.raw_content or b""
        if len(body) > call.route.max_body:
            raise EgressError("bad_gateway", "the third party's answer is over the route's limit")
        message = Message(
            headers=header_list(answer.headers),
            body=body if needs_body else b"",
            limit=call.route.max_body,
        )
        out = await rules.apply(message, self._context(call, "response"))
        answer.headers = mitm_headers(out.headers)
        if out.body_changed:
            answer.raw_content = out.body
            for name in (*_BODY_DIGESTS, "ETag", "Last-Modified"):
                answer.headers.pop(name, None)
            answer.headers["Cache-Control"] = "no-store"

    def _context(self, call: _Call, direction: Direction) -> ActionContext:
        """Requests act for the client; answers make ownerless records in the route's tenant."""
        if direction == "request":
            subject = Subject(sub=call.client.subject, roles=call.client.roles)
        else:
            subject = Subject()
        runtime = self._runtime
        return ActionContext(
            route=call.route.name,
            rule="",
            direction=direction,
            subject=subject,
            vault=runtime.vault,
            keys=runtime.keys,
            audit=EgressAuditor(runtime.audit, call.host, call.port, call.released),
            limiter=runtime.limiter,
            now=self._clock(),
            request_id=call.request_id,
            tenant=call.route.tenant,
        )


def _audit_down() -> EgressError:
    return EgressError("service_unavailable", "the audit log cannot record the call")


def _refuse(flow: http.HTTPFlow, error: GatewayError | str, request_id: str) -> None:
    status, body, headers = refusal(error, request_id)
    flow.response = http.Response.make(status, body, headers)


def _status(flow: http.HTTPFlow) -> int | None:
    return flow.response.status_code if flow.response is not None else None
