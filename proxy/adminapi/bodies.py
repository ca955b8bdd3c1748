"""Request bodies of the admin API: JSON objects only, small, strictly shaped.

A POST may come without a body (where every field is optional); with one, it
must be ``Content-Type: application/json`` (415 otherwise), at most
:data:`MAX_BODY` bytes unless its route sets another limit (413), a single
JSON object without duplicate keys (400), and match its model exactly:
unknown fields are refused, not ignored. Error messages name the model's own
fields only, never the caller's input.
"""

from __future__ import annotations

import json
from typing import Final, Literal

from aiohttp import web
from pydantic import Field, ValidationError

from policy.types import StrictModel
from proxy.adminapi.errors import BadRequest

MAX_BODY: Final = 16 * 1024
REASON_PATTERN: Final = r"^[^\x00-\x1f\x7f]*$"


class RevokeBody(StrictModel):
    """Optional body of a revoke: why, for the audit log."""

    reason: str | None = Field(
        None,
        max_length=256,
        pattern=REASON_PATTERN,
        description="why the sessions are revoked (written to the audit log)",
    )


class RevokeAllBody(RevokeBody):
    """Body of revoke-all: the explicit confirmation this drastic act needs."""

    confirm: Literal["revoke-all"] = Field(
        description='must be "revoke-all": every user is signed out'
    )


class _NoDuplicates(dict[str, object]):
    """object_pairs_hook: a JSON object whose keys are unique (else ambiguous: refused)."""

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__(pairs)
        if len(self) != len(pairs):
            raise BadRequest("admin: body has a duplicate key")


async def read_body[M: StrictModel](
    request: web.Request, model: type[M], *, limit: int = MAX_BODY
) -> M:
    """The request body (at most ``limit`` bytes) parsed into ``model``; BadRequest otherwise."""
    raw = await _read_limited(request, limit) if request.body_exists else b""
    if not raw:
        data: object = {}
    else:
        if request.content_type != "application/json":
            raise BadRequest(
                "admin: the body must be JSON (Content-Type: application/json)",
                status=415,
                code="unsupported_media_type",
            )
        try:
            data = json.loads(raw.decode("utf-8"), object_pairs_hook=_NoDuplicates)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise BadRequest("admin: the body is not valid UTF-8 JSON") from e
    if not isinstance(data, dict):
        raise BadRequest("admin: the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadRequest(_describe(e, model)) from e


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; 413 beyond, whatever Content-Length claims."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> BadRequest:
    return BadRequest(
        f"admin: the body exceeds {limit} bytes", status=413, code="payload_too_large"
    )


def _describe(error: ValidationError, model: type[StrictModel]) -> str:
    """A message naming the first failing field of ``model`` (never the caller's own keys)."""
    first = error.errors()[0]
    if first["type"] == "extra_forbidden":
        return "admin: the body has an unknown field"
    loc = first["loc"][0] if first["loc"] else ""
    name = loc if isinstance(loc, str) and loc in model.model_fields else "body"
    if first["type"] == "missing":
        return f"admin: body field '{name}' is required"
    if name == "confirm":
        return "admin: body field 'confirm' must be \"revoke-all\""
    return f"admin: body field '{name}' is invalid"
