"""Errors the proxy answers with, and the one JSON shape every error body has.

Every error a client sees is ``{"error": code, "message": text, "request_id": id}``
with a fixed, short message per code: internal details (exception text,
upstream addresses, parser internals) go to the log with the request id, never
to the client.
"""

from __future__ import annotations

import json

from aiohttp import web

from tokengate.errors import GatewayError

# code -> (status, fixed public message)
PUBLIC_ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the request is malformed"),
    "unauthorized": (401, "a valid session is required"),
    "insufficient_user_authentication": (
        401,
        "this route needs a stronger or more recent authentication",
    ),
    "login_failed": (401, "the login could not be completed"),
    "invalid_dpop_proof": (401, "a valid DPoP proof for the session's key is required"),
    "use_dpop_nonce": (401, "retry the DPoP proof with the server nonce in DPoP-Nonce"),
    "bad_field": (400, "a field of the message does not satisfy its rule"),
    "forbidden": (403, "the session may not use this route"),
    "denied": (403, "the policy refuses this message to this caller"),
    "csrf_refused": (403, "cross-origin request refused"),
    "websocket_not_allowed": (403, "this route does not accept websocket upgrades"),
    "not_found": (404, "no route matches this request"),
    "method_not_allowed": (405, "this route does not accept the method"),
    "payload_too_large": (413, "the request body exceeds this route's limit"),
    "unsupported_media_type": (415, "the body's content type cannot be read by this route"),
    "headers_too_large": (431, "the request headers are too large"),
    "upstream_unavailable": (502, "the upstream could not be reached"),
    "bad_gateway": (502, "the upstream answered with an invalid response"),
    "service_unavailable": (503, "the gateway cannot serve this request right now"),
    "vault_unavailable": (503, "the token vault cannot serve this request right now"),
    "tee_unavailable": (503, "the TEE pool cannot serve this request right now"),
    "upstream_timeout": (504, "the upstream did not answer in time"),
    "internal_error": (500, "the gateway failed to handle this request"),
}


class ProxyError(GatewayError):
    """An error answered to the client with one of :data:`PUBLIC_ERRORS`."""

    def __init__(
        self, code: str, detail: str = "", *, headers: dict[str, str] | None = None
    ) -> None:
        status, _ = PUBLIC_ERRORS[code]
        super().__init__(f"proxy: {detail or code}", status=status, code=code)
        self.headers = headers or {}


def error_body(code: str, request_id: str, message: str | None = None) -> bytes:
    """The JSON body for ``code``; ``message`` only for messages known to be public."""
    status_message = PUBLIC_ERRORS.get(code, PUBLIC_ERRORS["internal_error"])[1]
    body = {"error": code, "message": message or status_message, "request_id": request_id}
    return json.dumps(body, separators=(",", ":")).encode()


def error_response(
    code: str,
    request_id: str,
    *,
    status: int | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A complete JSON error response that closes nothing and leaks nothing."""
    resolved = status or PUBLIC_ERRORS.get(code, PUBLIC_ERRORS["internal_error"])[0]
    resp = web.Response(
        status=resolved,
        body=error_body(code, request_id, message),
        content_type="application/json",
        headers=headers,
    )
    resp.headers["X-Request-ID"] = request_id
    resp.headers["Cache-Control"] = "no-store"
    return resp
