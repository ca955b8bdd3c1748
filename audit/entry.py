"""Audit entries: one canonical JSON line each, hash-chained per writer.

Rules (the verifier checks every one of them):
- An entry is the canonical JSON (:mod:`audit.canonical`) of the object
  ``{"v", "writer", "seq", "ts", "event", "fields", "prev", "hash"}`` followed
  by one ``\\n``; nothing else is on the line.
- ``hash`` is the lowercase hex SHA-256 of the canonical JSON of the same
  object without ``hash``. ``prev`` is the ``hash`` of the writer's previous
  entry, and :data:`GENESIS` (64 zeros) for ``seq`` 0.
- ``seq`` starts at 0 and grows by exactly one per entry of the writer, across
  rotated files: one chain per writer process.
- ``ts`` is RFC 3339 UTC with exactly six fraction digits and ``Z``, so the
  string order of timestamps is their time order.
- ``writer`` is ``[A-Za-z0-9][A-Za-z0-9_-]{0,127}`` (no dots: file names stay
  unambiguous); ``v`` is :data:`FORMAT_VERSION`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from audit.canonical import JsonValue, canonical_json, sha256_hex
from audit.errors import AuditFormatError
from audit.schema import EVENT_NAME, FIELD_NAME, AuditValue

FORMAT_VERSION = 1
GENESIS = "0" * 64
WRITER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEYS = frozenset({"v", "writer", "seq", "ts", "event", "fields", "prev", "hash"})
MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as written (``line`` ends with ``\\n``); ``intact`` is False when ``hash`` lies."""

    writer: str
    seq: int
    ts: str
    event: str
    fields: Mapping[str, AuditValue]
    prev: str
    hash: str
    line: bytes
    intact: bool = True


def format_ts(moment: datetime) -> str:
    """``moment`` as the entry timestamp form (UTC, microseconds, ``Z``)."""
    if moment.tzinfo is None:
        raise AuditFormatError("audit: timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_entry(
    *, writer: str, seq: int, ts: str, event: str, fields: Mapping[str, AuditValue], prev: str
) -> Entry:
    """The entry for already-validated ``fields``, with its hash and line."""
    body: dict[str, JsonValue] = {
        "v": FORMAT_VERSION,
        "writer": writer,
        "seq": seq,
        "ts": ts,
        "event": event,
        "fields": json_fields(fields),
        "prev": prev,
    }
    digest = sha256_hex(canonical_json(body))
    body["hash"] = digest
    line = canonical_json(body) + b"\n"
    return Entry(writer, seq, ts, event, dict(fields), prev, digest, line)


def json_fields(fields: Mapping[str, AuditValue]) -> dict[str, JsonValue]:
    """A copy of ``fields`` typed as canonical-JSON values."""
    out: dict[str, JsonValue] = {}
    for key, value in fields.items():
        out[key] = [*value] if isinstance(value, list) else value
    return out


def parse_entry(data: bytes) -> Entry:
    """Parse one line (with or without its ``\\n``); raise AuditFormatError when malformed.

    Well-formed means: UTF-8 canonical JSON with exactly the entry keys, each
    of the right type. A well-formed entry whose hash does not match its
    content is returned with ``intact=False``, so the verifier can say "edited".
    """
    raw = data[:-1] if data.endswith(b"\n") else data
    if len(raw) > MAX_LINE:
        raise AuditFormatError("audit: line too long")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError) as e:
        raise AuditFormatError("audit: line is not utf-8 json") from e
    if not isinstance(obj, dict) or set(obj) != KEYS:
        raise AuditFormatError("audit: line is not an entry object")
    entry = _typed(obj, raw + b"\n")
    if canonical_json(obj) != raw:
        raise AuditFormatError("audit: line is not canonical json")
    body = {k: v for k, v in obj.items() if k != "hash"}
    if sha256_hex(canonical_json(body)) != entry.hash:
        return replace(entry, intact=False)
    return entry


def _typed(obj: dict[str, object], line: bytes) -> Entry:
    """The entry fields of ``obj`` with their types checked."""
    v, writer, seq, ts = obj["v"], obj["writer"], obj["seq"], obj["ts"]
    event, fields, prev, digest = obj["event"], obj["fields"], obj["prev"], obj["hash"]
    if type(v) is not int or v != FORMAT_VERSION:
        raise AuditFormatError("audit: unsupported entry version")
    if not isinstance(writer, str) or not WRITER.match(writer):
        raise AuditFormatError("audit: bad writer")
    if type(seq) is not int or seq < 0:
        raise AuditFormatError("audit: bad seq")
    if not isinstance(ts, str) or not TIMESTAMP.match(ts):
        raise AuditFormatError("audit: bad ts")
    if not isinstance(event, str) or not EVENT_NAME.match(event):
        raise AuditFormatError("audit: bad event name")
    if not isinstance(prev, str) or not HEX_SHA256.match(prev):
        raise AuditFormatError("audit: bad prev")
    if not isinstance(digest, str) or not HEX_SHA256.match(digest):
        raise AuditFormatError("audit: bad hash")
    return Entry(writer, seq, ts, event, _fields(fields), prev, digest, line)


def _fields(fields: object) -> dict[str, AuditValue]:
    """``fields`` checked to be a flat object of audit values."""
    if not isinstance(fields, dict):
        raise AuditFormatError("audit: bad fields")
    out: dict[str, AuditValue] = {}
    for key, value in fields.items():
        if not FIELD_NAME.match(key):
            raise AuditFormatError("audit: bad field name")
        if isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                raise AuditFormatError("audit: bad field value")
            out[key] = [str(item) for item in value]
        elif value is None or isinstance(value, (str, int, bool)):
            out[key] = value
        else:
            raise AuditFormatError("audit: bad field value")
    return out


def _no_float(text: str) -> object:
    """json hook: floats and NaN/Infinity are not part of canonical JSON."""
    raise ValueError("floats are not allowed")
