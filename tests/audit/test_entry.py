"""Entry format: known answer, round trip, and strict parsing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit.entry import GENESIS, build_entry, format_ts, parse_entry
from audit.errors import AuditFormatError

TS = "2025-01-02T03:04:05.000006Z"


def test_known_answer() -> None:
    body = (
        '{"event":"gateway.stop","fields":{"reason":"x"},"prev":"' + "0" * 64 + '",'
        f'"seq":0,"ts":"{TS}","v":1,"writer":"w-1"}}'
    )
    digest = hashlib.sha256(body.encode()).hexdigest()
    line = (
        '{"event":"gateway.stop","fields":{"reason":"x"},"hash":"'
        + digest
        + '","prev":"'
        + "0" * 64
        + f'","seq":0,"ts":"{TS}","v":1,"writer":"w-1"}}\n'
    )
    entry = build_entry(
        writer="w-1", seq=0, ts=TS, event="gateway.stop", fields={"reason": "x"}, prev=GENESIS
    )
    assert entry.hash == digest
    assert entry.line == line.encode()


def test_parse_round_trips() -> None:
    entry = build_entry(
        writer="w",
        seq=7,
        ts=TS,
        event="policy.reload",
        fields={"result": "ok", "files": 2, "x": ["a"]},
        prev="ab" * 32,
    )
    assert parse_entry(entry.line) == entry
    assert parse_entry(entry.line[:-1]).hash == entry.hash


def test_a_lying_hash_parses_as_not_intact() -> None:
    entry = build_entry(writer="w", seq=0, ts=TS, event="gateway.stop", fields={}, prev=GENESIS)
    forged = entry.line.replace(entry.hash.encode(), b"f" * 64)
    assert parse_entry(forged).intact is False
    assert parse_entry(entry.line).intact is True


def _mutated(**changes: object) -> bytes:
    entry = build_entry(
        writer="w", seq=0, ts=TS, event="gateway.stop", fields={"reason": "r"}, prev=GENESIS
    )
    obj = json.loads(entry.line)
    obj.update(changes)
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json\n",
        b"\xff\xfe\n",
        b"[1,2]\n",
        _mutated(extra=1),
        _mutated(v=2),
        _mutated(writer="has.dot"),
        _mutated(seq=-1),
        _mutated(seq=True),
        _mutated(ts="2025-01-02 03:04:05Z"),
        _mutated(event="NoArea"),
        _mutated(prev="xyz"),
        _mutated(hash="ABC"),
        _mutated(fields={"reason": {"nested": 1}}),
        _mutated(fields={"Bad": 1}),
        _mutated(fields={"n": [1]}),
        _mutated(fields="x"),
        _mutated(seq=1.0),
        _mutated(seq=1).replace(b'"seq":1', b'"seq":1e0'),
        _mutated().replace(b",", b", ", 1),  # not canonical
        _mutated().replace(b'"event"', b'"event":"x","event"', 1),  # duplicate key
    ],
)
def test_malformed_lines_are_refused(line: bytes) -> None:
    with pytest.raises(AuditFormatError):
        parse_entry(line)


def test_timestamps_are_utc_with_microseconds() -> None:
    moment = datetime(2025, 1, 2, 4, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    assert format_ts(moment) == TS
    assert format_ts(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05.000000Z"
    with pytest.raises(AuditFormatError):
        format_ts(datetime(2025, 1, 2))
