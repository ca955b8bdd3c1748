"""The message the proxy hands to field rules, what it gets back, and how a message fails.

No HTTP framework here: headers are plain (name, value) pairs in wire order,
the query string is the raw text after ``?`` (still percent-encoded), the
body is the buffered bytes as received (still content-encoded). Content-Type
and Content-Encoding are read from the headers, so what rules read is exactly
what the backend will be told.

Errors: every refusal is a :class:`MessageError` with a status hint and a
code for the JSON error body. Messages name the rule (``request[0] $.ssn``)
and a fixed reason, never a value, so the public ones may be shown to the
client. A refusal caused by a backend's response (malformed, too large,
unsupported) is the backend's fault: it carries 502 ``bad_gateway`` and is
not public; a denial stays 403 in both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokengate.errors import GatewayError

type HeaderList = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One request or response as field rules see it.

    ``limit`` bounds the body both as received and once decoded (413 above).
    When the route's transformer says it needs no body, pass ``body=b""``:
    the body is then neither read nor returned changed.
    """

    headers: HeaderList
    body: bytes = field(default=b"", repr=False)
    query: str = field(default="", repr=False)
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformedMessage:
    """The message to forward. ``body_changed`` says whether ``body`` differs from the input.

    When the body changed, ``headers`` carry its new Content-Length and the
    same Content-Encoding (the body was re-encoded that way).
    """

    headers: HeaderList
    body: bytes = field(repr=False)
    query: str = field(repr=False)
    body_changed: bool
    fields: int  # values written back (replaced or removed), for metrics


def header_values(headers: HeaderList, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), in order."""
    lname = name.lower()
    return [v for k, v in headers if k.lower() == lname]


class MessageError(GatewayError):
    """Base of every refusal of a message by its field rules (500 when nothing narrower fits)."""

    code = "internal_error"

    def __init__(self, message: str, *, upstream: bool = False) -> None:
        super().__init__(message)
        if upstream and not isinstance(self, Denied):
            self.status, self.code, self.public = 502, "bad_gateway", False


class BadRequest(MessageError):
    """The message cannot be read as its headers say (malformed body, query, content-type)."""

    status, code, public = 400, "bad_request", True


class BadField(MessageError):
    """A rule found a value it cannot use (an object, a file, an invalid value)."""

    status, code, public = 400, "bad_field", True


class Denied(MessageError):
    """A rule refused the message."""

    status, code, public = 403, "denied", True


class PayloadTooLarge(MessageError):
    """The body is over the route's limit, as received or once decoded."""

    status, code, public = 413, "payload_too_large", True


class UnsupportedMediaType(MessageError):
    """A body rule applies but no codec reads this content type, charset or encoding."""

    status, code, public = 415, "unsupported_media_type", True
