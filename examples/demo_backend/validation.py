"""Reading and checking JSON request bodies.

Rules:
- Only ``application/json`` bodies are read (415 otherwise); that also keeps
  cross-site HTML forms, which cannot send JSON, from reaching the API.
- Bodies above ``MAX_BODY_BYTES`` get 413, malformed JSON or a non-object 400.
- A duplicated key is refused: a proxy and this app must never read different
  values out of the same body.
- Every declared field is required and must be a string of bounded length;
  any other key is refused. Values are kept exactly as sent (no format checks),
  because with tokengate in front they are tokens.
- Error messages name the field, never its value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from aiohttp import web

from demo_backend.errors import ApiError

MAX_BODY_BYTES = 64 * 1024
RECORD_LIMITS: Mapping[str, int] = {"name": 200, "email": 320, "ssn": 256, "card_number": 256}
LOGIN_LIMITS: Mapping[str, int] = {"username": 64, "password": 256}
# Keys matching this are safe to quote back; anything else is described, not echoed.
_PRINTABLE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _invalid_field(field: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_field", f"field '{field}' {problem}")


def _key_label(key: str) -> str:
    return f"'{key}'" if _PRINTABLE_KEY.fullmatch(key) else "with an unprintable name"


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def read_body(request: web.Request) -> bytes:
    """The whole body (read once, cached by aiohttp), or 413 above ``MAX_BODY_BYTES``."""
    too_large = ApiError(413, "payload_too_large", f"body must be at most {MAX_BODY_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as e:
        raise too_large from e


async def read_json_object(request: web.Request) -> dict[str, object]:
    """The body as a JSON object, or the matching 400/413/415 error."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "content type must be application/json")
    raw = await read_body(request)
    try:
        parsed = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as e:
        raise ApiError(400, "invalid_json", "body repeats a key") from e
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ApiError(400, "invalid_json", "body is not valid JSON") from e
    if not isinstance(parsed, dict):
        raise ApiError(400, "invalid_json", "body must be a JSON object")
    return parsed


def string_fields(body: Mapping[str, object], limits: Mapping[str, int]) -> dict[str, str]:
    """Exactly the fields in ``limits``, each a non-empty string within its length limit."""
    for key in body:
        if key not in limits:
            raise ApiError(400, "unknown_field", f"field {_key_label(key)} is not allowed")
    fields: dict[str, str] = {}
    for name, limit in limits.items():
        if name not in body:
            raise _invalid_field(name, "is required")
        value = body[name]
        if not isinstance(value, str):
            raise _invalid_field(name, "must be a string")
        if not 1 <= len(value) <= limit:
            raise _invalid_field(name, f"must be 1 to {limit} characters")
        if not _is_utf8(value):
            raise _invalid_field(name, "must be valid unicode (no lone surrogates)")
        fields[name] = value
    return fields
