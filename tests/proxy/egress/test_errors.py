"""Refusals: one JSON shape, fixed messages unless the error is public, 407 challenges."""

from __future__ import annotations

import json

import pytest

from policy.message import BadField, Denied, MessageError
from proxy.egress.errors import EgressError, failure_kind, refusal
from tokengate.errors import GatewayError
from vault.errors import VaultUnavailable


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        ("proxy_auth_required", 407, "proxy_auth_required", None),
        (EgressError("host_not_allowed", "api.x.example:443"), 403, "host_not_allowed", None),
        (
            Denied("policy: request[0] $.card: denied (roles)"),
            403,
            "denied",
            "policy: request[0] $.card: denied (roles)",
        ),
        (
            BadField("policy: request[0] $.card: invalid value"),
            400,
            "bad_field",
            "policy: request[0] $.card: invalid value",
        ),
        (
            MessageError("policy: response[0] $.x: unreadable", upstream=True),
            502,
            "bad_gateway",
            None,
        ),
        (VaultUnavailable("vault: redis down at 10.0.0.1"), 503, "vault_unavailable", None),
        (
            GatewayError("kms: something private", status=503, code="kms_sealed"),
            503,
            "service_unavailable",
            None,
        ),
        (GatewayError("odd", status=418, code="teapot"), 500, "internal_error", None),
    ],
    ids=["bare-code", "egress", "denied", "bad-field", "upstream", "vault", "private-503", "other"],
)
def test_refusal(error: GatewayError | str, status: int, code: str, message: str | None) -> None:
    got_status, body, headers = refusal(error, "rid-1")
    doc = json.loads(body)
    assert (got_status, doc["error"], doc["request_id"]) == (status, code, "rid-1")
    if message is not None:
        assert doc["message"] == message
    else:
        assert "10.0.0.1" not in doc["message"]
        assert "private" not in doc["message"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-ID"] == "rid-1"
    assert ("Proxy-Authenticate" in headers) is (status == 407)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Connection refused", "connect"),
        ("Server disconnected.", "closed"),
        ("peer closed connection without sending complete message body", "closed"),
        ("Connection reset by peer", "closed"),
        ("TLS handshake failed: certificate verify failed", "tls"),
        ("Connection timed out", "timeout"),
        ("Name or service not known (failed to resolve)", "connect"),
        ("something else", "other"),
        ("", "other"),
    ],
    ids=["refused", "disconnected", "closed", "reset", "tls", "timeout", "dns", "other", "empty"],
)
def test_failure_kinds(message: str, kind: str) -> None:
    assert failure_kind(message) == kind
