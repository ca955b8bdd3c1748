"""One stored record as one byte string, for stores that keep a value per key (Redis, S3).

Layout (version 1), ASCII header then the two opaque parts::

    <expires or "-"> SP <key_version> SP <len(outer)> LF <outer> <meta>

``expires`` comes first and in decimal so that a Redis Lua script can read it
with one pattern match (an id whose record has expired is free for a new
record). The id is not inside: it is the key. Anything that does not parse is
refused as malformed (fail closed), never guessed at.
"""

from __future__ import annotations

import re
from typing import Final

from vault.errors import VaultUnavailable
from vault.store import StoredRecord

_HEADER: Final = re.compile(rb"\A(-|0|[1-9][0-9]{0,18}) (0|[1-9][0-9]{0,9}) (0|[1-9][0-9]{0,9})\n")


def pack(record: StoredRecord) -> bytes:
    """The stored bytes of ``record`` (without its id)."""
    if record.key_version < 0 or (record.expires is not None and record.expires < 0):
        raise ValueError("vault: key_version and expires cannot be negative")
    expires = b"-" if record.expires is None else b"%d" % record.expires
    header = b"%s %d %d\n" % (expires, record.key_version, len(record.outer))
    return header + record.outer + record.meta


def unpack(record_id: bytes, data: bytes, *, where: str) -> StoredRecord:
    """The record stored under ``record_id``; VaultUnavailable if ``data`` is malformed."""
    match = _HEADER.match(data)
    if match is None:
        raise VaultUnavailable(f"vault: {where}: a stored record is malformed")
    expires_text, version, outer_len = match.groups()
    start = match.end()
    end = start + int(outer_len)
    if end > len(data):
        raise VaultUnavailable(f"vault: {where}: a stored record is truncated")
    return StoredRecord(
        id=record_id,
        key_version=int(version),
        outer=data[start:end],
        meta=data[end:],
        expires=None if expires_text == b"-" else int(expires_text),
    )


def is_live(expires: int | None, now: float) -> bool:
    """Whether a record with this expiry may still be returned at ``now``."""
    return expires is None or expires > now


def check_rewrap(old: StoredRecord, new: StoredRecord) -> None:
    """``replace_outer`` may change key_version and outer only; ValueError otherwise."""
    if (new.id, new.meta, new.expires) != (old.id, old.meta, old.expires):
        raise ValueError("vault: replace_outer may change key_version and outer only")


def first_occurrences(records: list[StoredRecord]) -> dict[bytes, int]:
    """Index of the first record of each id: later duplicates in one batch are not inserted."""
    first: dict[bytes, int] = {}
    for i, record in enumerate(records):
        first.setdefault(record.id, i)
    return first
