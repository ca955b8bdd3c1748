"""Reading and checking the broker and registry API's JSON bodies.

A body is one JSON object (no duplicate members, no NaN/Infinity) of at most
``limit`` bytes (413 ``body_too_large``), with only the members a route
allows (400 ``bad_request`` otherwise). Field checkers return typed values or
raise :class:`~kms.errors.BrokerError` with a fixed message that names the
field, never echoing its value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from kms.errors import BrokerError
from tee.registry import ID_RE, LABEL_RE
from tee.wire import b64d

type Body = Mapping[str, object]

REQUEST_ID_RE: Final = re.compile(r"[\x21-\x7e]{1,128}")
SESSION_RE: Final = re.compile(r"tgs_[a-z2-7]{52}")
GRANT_ID_RE: Final = re.compile(r"tgr_[a-z2-7]{26}")


async def read_body(
    request: web.Request, *, limit: int, allowed: frozenset[str], required: frozenset[str]
) -> Body:
    """The request's JSON object, checked for size, shape and members."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(limit)
    try:
        doc = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise BrokerError("kms: the body is not one JSON object") from e
    if not isinstance(doc, dict):
        raise BrokerError("kms: the body is not one JSON object")
    if set(doc) - allowed or required - set(doc):
        names = ", ".join(sorted(allowed))
        raise BrokerError(f"kms: the body takes {names} (required: {', '.join(sorted(required))})")
    return doc


def tee_id(body: Body, name: str = "tee_id") -> str:
    """A TEE id."""
    return _match(body, name, ID_RE)


def label(body: Body, name: str) -> str:
    """A job or tenant name."""
    return _match(body, name, LABEL_RE)


def request_id(body: Body) -> str:
    """A request id (printable ASCII, at most 128 characters)."""
    return _match(body, "request_id", REQUEST_ID_RE)


def grant_id(body: Body) -> str:
    """A grant id as the KMS makes them."""
    return _match(body, "grant_id", GRANT_ID_RE)


def raw_bytes(body: Body, name: str, *, size: int | None = None, limit: int = 1 << 24) -> bytes:
    """Base64url bytes (exactly ``size`` long when given; non-empty)."""
    try:
        value = b64d(body.get(name))
    except ValueError as e:
        raise BrokerError(f"kms: '{name}' must be base64url without padding") from e
    if (size is not None and len(value) != size) or not value or len(value) > limit:
        wanted = f"{size} bytes" if size is not None else "non-empty"
        raise BrokerError(f"kms: '{name}' must be {wanted}")
    return value


def optional_int(body: Body, name: str) -> int | None:
    """An integer member, or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrokerError(f"kms: '{name}' must be an integer")
    return value


def session_token(request: web.Request) -> str | None:
    """The attestation session a worker presents (``Authorization: Bearer tgs_...``), if any."""
    values = request.headers.getall("Authorization", [])
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip(" ")
    if scheme.lower() != "bearer" or not SESSION_RE.fullmatch(token):
        return None
    return token


def _match(body: Body, name: str, pattern: re.Pattern[str]) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BrokerError(f"kms: '{name}' is missing or malformed")
    return value


def _too_large(limit: int) -> BrokerError:
    return BrokerError(
        f"kms: the body is larger than {limit} bytes", status=413, code="body_too_large"
    )


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate member")
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
