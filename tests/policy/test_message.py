"""Message errors carry the status and code the proxy answers with; header lookup."""

from __future__ import annotations

import pytest

from policy.message import (
    BadField,
    BadRequest,
    Denied,
    MessageError,
    PayloadTooLarge,
    UnsupportedMediaType,
    header_values,
)
from tokengate.errors import GatewayError


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (BadRequest, 400, "bad_request"),
        (BadField, 400, "bad_field"),
        (Denied, 403, "denied"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
        (MessageError, 500, "internal_error"),
    ],
)
def test_error_statuses(cls: type[MessageError], status: int, code: str) -> None:
    err = cls("policy: x")
    assert (err.status, err.code) == (status, code)
    upstream = cls("policy: x", upstream=True)
    if cls is Denied:
        assert (upstream.status, upstream.code, upstream.public) == (403, "denied", True)
    else:
        assert (upstream.status, upstream.code, upstream.public) == (502, "bad_gateway", False)


def test_every_message_error_is_a_gateway_error() -> None:
    for cls in (BadRequest, BadField, Denied, PayloadTooLarge, UnsupportedMediaType):
        assert issubclass(cls, MessageError)
    assert issubclass(MessageError, GatewayError)
    assert not MessageError("policy: x").public


def test_header_values_are_case_insensitive_and_ordered() -> None:
    headers = (("A", "1"), ("b", "2"), ("a", "3"))
    assert header_values(headers, "a") == ["1", "3"]
    assert header_values(headers, "B") == ["2"]
    assert header_values(headers, "c") == []
