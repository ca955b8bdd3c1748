"""Decision audit: grouping, id chunking, the rate-limit alert (audit, log, metric)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from plugins.disclosure import MAX_IDS, Ledger, alert_rate_limited
from tests.plugins.support import ANONYMOUS, Env, RecordingAuditor


@pytest.mark.parametrize(
    ("adds", "entries"),
    [
        ([], []),
        ([(True, "owner", "a")], [("allow", "owner", 1, ["a"])]),
        (
            [(True, "owner", "a"), (False, "not_owner", "b"), (True, "owner", "c")],
            [("allow", "owner", 2, ["a", "c"]), ("deny", "not_owner", 1, ["b"])],
        ),
        (
            [(False, "malformed", None), (False, "malformed", None), (False, "unknown", "x")],
            [("deny", "malformed", 2, []), ("deny", "unknown", 1, ["x"])],
        ),
        (
            [(False, "rate_limited", "a"), (False, "not_owner", "b")],
            [("deny", "rate_limited", 1, ["a"]), ("deny", "not_owner", 1, ["b"])],
        ),
    ],
)
async def test_groups(
    env: Env,
    adds: list[tuple[bool, str, str | None]],
    entries: list[tuple[str, str, int, list[str]]],
) -> None:
    ledger = Ledger("ssn", "mask")
    for allow, reason, id_hash in adds:
        ledger.add(allow, reason, id_hash)
    await ledger.emit(env.ctx())
    got = [
        (f["decision"], f["reason"], f["count"], f["record_ids"])
        for f in env.audit.find("token.detokenize")
    ]
    assert got == entries
    for f in env.audit.find("token.detokenize"):
        assert f["otherwise"] == (None if f["decision"] == "allow" else "mask")
        assert (f["route"], f["rule"], f["field_class"], f["subject"], f["request_id"]) == (
            "records",
            "response[0]",
            "ssn",
            "alice",
            "req-1",
        )


@pytest.mark.parametrize(
    ("with_ids", "without_ids", "chunks"),
    [
        (MAX_IDS, 0, [(MAX_IDS, MAX_IDS)]),
        (MAX_IDS + 1, 0, [(MAX_IDS, MAX_IDS), (1, 1)]),
        (2 * MAX_IDS, 3, [(MAX_IDS, MAX_IDS), (MAX_IDS + 3, MAX_IDS)]),
        (0, 7, [(7, 0)]),
    ],
)
async def test_ids_are_chunked_and_counts_add_up(
    env: Env, with_ids: int, without_ids: int, chunks: list[tuple[int, int]]
) -> None:
    ledger = Ledger("ssn", "redact")
    for i in range(with_ids):
        ledger.add(False, "unknown", f"{i:032x}")
    for _ in range(without_ids):
        ledger.add(False, "unknown", None)
    await ledger.emit(env.ctx())
    entries = env.audit.find("token.detokenize")
    assert [(f["count"], len(f["record_ids"])) for f in entries] == chunks  # type: ignore[arg-type]
    assert sum(f["count"] for f in entries) == with_ids + without_ids  # type: ignore[misc]


async def test_an_audit_failure_raises(env: Env) -> None:
    ledger = Ledger("ssn", "mask")
    ledger.add(True, "owner", "a")
    env.audit = RecordingAuditor(fail=True)
    with pytest.raises(OSError, match="audit sink down"):
        await ledger.emit(env.ctx())


async def test_the_rate_limit_alert_is_audited_logged_and_counted(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"route": "records", "field_class": "pan"}
    before = REGISTRY.get_sample_value("tokengate_detokenize_rate_limited_total", labels) or 0.0
    with caplog.at_level(logging.WARNING, logger="tokengate.plugins"):
        await alert_rate_limited(env.ctx(ANONYMOUS), "pan", 7, 5, 0.5)
    assert env.audit.find("token.rate_limited") == [
        {
            "route": "records",
            "rule": "response[0]",
            "field_class": "pan",
            "subject": "anonymous",
            "count": 7,
            "limit": 5,
            "window": 1,
            "request_id": "req-1",
        }
    ]
    assert (
        REGISTRY.get_sample_value("tokengate_detokenize_rate_limited_total", labels) == before + 1
    )
    [line] = [r.getMessage() for r in caplog.records if r.name == "tokengate.plugins"]
    assert "class=pan subject=anonymous count=7 limit=5" in line


async def test_an_alert_that_cannot_be_audited_raises(env: Env) -> None:
    env.audit = RecordingAuditor(fail=True)
    with pytest.raises(OSError, match="audit sink down"):
        await alert_rate_limited(env.ctx(), "ssn", 1, 1, 60)
