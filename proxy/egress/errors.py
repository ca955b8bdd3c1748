"""Errors of the egress relay and the one JSON shape of every refusal it answers.

A refusal is ``{"error": code, "message": text, "request_id": id}``, the
gateway's shape (:mod:`proxy.errors`), with the relay's own codes added. The
message is the fixed one of its code unless the error declares itself public
(a rule's name and a fixed reason, never a value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType

from proxy.errors import PUBLIC_ERRORS
from tokengate.errors import GatewayError

_EGRESS_ERRORS: dict[str, tuple[int, str]] = {
    "proxy_auth_required": (407, "the relay needs valid client credentials (Proxy-Authorization)"),
    "host_not_allowed": (403, "this host is not on the relay's allow list"),
    "plain_http_refused": (403, "the relay sends requests to third parties over https only"),
    "route_not_allowed": (403, "no egress route allows this request"),
    "misdirected_request": (421, "the Host header or TLS server name is not the CONNECT target"),
    "upgrade_refused": (403, "the relay does not relay protocol upgrades"),
    "release_cap": (403, "the request would release more values than its route allows"),
    "rate_limited": (429, "this client's release budget for the route is used up"),
    "upstream_certificate": (502, "the third party's TLS certificate did not verify"),
}

ERRORS: Mapping[str, tuple[int, str]] = MappingProxyType({**PUBLIC_ERRORS, **_EGRESS_ERRORS})
PROXY_AUTHENTICATE = 'Basic realm="tokengate-egress", charset="UTF-8"'


class EgressError(GatewayError):
    """Base of the relay's refusals: the call is not sent on."""

    status = 502
    code = "bad_gateway"

    def __init__(self, code: str, detail: str = "", *, public: bool = False) -> None:
        status, _ = ERRORS[code]
        super().__init__(f"egress: {detail or code}", status=status, code=code)
        self.public = public


class ReleaseRefused(EgressError):
    """A route's release cap or a client's rate limit refuses the values of one request."""


def refusal(error: GatewayError | str, request_id: str) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers for a refusal (an error, or a bare code)."""
    code = refusal_code(error)
    if isinstance(error, GatewayError) and error.code in ERRORS:
        status = error.status
        message = str(error) if error.public else None
    else:
        status, message = ERRORS[code][0], None
    body = {
        "error": code,
        "message": message or ERRORS[code][1],
        "request_id": request_id,
    }
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "X-Request-ID": request_id,
    }
    if status == 407:
        headers["Proxy-Authenticate"] = PROXY_AUTHENTICATE
    return status, json.dumps(body, separators=(",", ":")).encode(), headers


def refusal_code(error: GatewayError | str) -> str:
    """The public ``error`` code a refusal answers (another package's private code: generic)."""
    if isinstance(error, str):
        return error
    return error.code if error.code in ERRORS else _generic(error.status)


def _generic(status: int) -> str:
    """The generic code of a package error whose own code is not a public one."""
    if status == 503:
        return "service_unavailable"
    return "bad_gateway" if status == 502 else "internal_error"


def failure_kind(message: str) -> str:
    """A fixed word for mitmproxy's error message (the message itself is not audited)."""
    text = message.lower()
    for kind, words in _FAILURE_WORDS:
        if any(w in text for w in words):
            return kind
    return "other"


_FAILURE_WORDS = (
    ("tls", ("tls", "ssl", "certificate", "handshake")),
    ("timeout", ("timeout", "timed out")),
    ("closed", ("closed", "disconnect", "reset", "killed", "eof")),
    ("connect", ("refused", "unreachable", "resolve", "connect")),  # after "disconnect"
)
