"""Release gates: the per-request budget, the per-client rate, the audit names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import pytest

from plugins.base import ActionContext, FieldResult, FieldValue, Subject
from plugins.ratelimit import MemoryRateLimiter
from proxy.egress.errors import EgressError, ReleaseRefused
from proxy.egress.model import ReleaseRateLimit
from proxy.egress.release import EgressAuditor, ReleaseGate, release_budget
from tests.kms_client.support import RecordingAuditor


class Reveal:
    """Stands in for detokenize: counts what reached it."""

    name: ClassVar[str] = "detokenize"

    def __init__(self) -> None:
        self.seen = 0

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        self.seen += len(batch)
        return [FieldResult.replace("x") for _ in batch]


def _ctx(auditor: RecordingAuditor, limiter: MemoryRateLimiter) -> ActionContext:
    return ActionContext(
        route="pay",
        rule="request[0]",
        direction="request",
        subject=Subject(sub="egress:backend"),
        vault=None,  # type: ignore[arg-type]
        keys=None,  # type: ignore[arg-type]
        audit=EgressAuditor(auditor, "api.pay.example", 443),
        limiter=limiter,
        now=0.0,
        request_id="r1",
    )


def _values(*values: str | None) -> list[FieldValue]:
    return [FieldValue(v, "$.x") for v in values]


def _gate(inner: Reveal, values: int = 100) -> ReleaseGate:
    return ReleaseGate(inner, field_class="pan", rate=ReleaseRateLimit(values=values, window=60))


async def test_values_within_the_budget_reach_the_action() -> None:
    inner, auditor = Reveal(), RecordingAuditor()
    ctx = _ctx(auditor, MemoryRateLimiter())
    gate = _gate(inner)
    with release_budget(3) as budget:
        await gate.apply(_values("a", "b", None, ""), ctx)  # null and "" reveal nothing
        assert budget.left == 1
        with pytest.raises(ReleaseRefused) as info:
            await gate.apply(_values("c", "d"), ctx)
    assert inner.seen == 4
    assert (info.value.status, info.value.code) == (403, "release_cap")
    (event, fields) = auditor.events[0]
    assert (event, fields["reason"], fields["count"], fields["host"]) == (
        "egress.refused",
        "release_cap",
        2,
        "api.pay.example",
    )


async def test_the_client_rate_is_per_route_and_subject() -> None:
    inner, auditor, limiter = Reveal(), RecordingAuditor(), MemoryRateLimiter()
    gate = _gate(inner, values=2)
    ctx = _ctx(auditor, limiter)
    with release_budget(10):
        await gate.apply(_values("a", "b"), ctx)
        with pytest.raises(ReleaseRefused) as info:
            await gate.apply(_values("c"), ctx)
    assert (info.value.status, info.value.code) == (429, "rate_limited")
    assert await limiter.take("egress:pay:egress:other", 2, limit=2, window=60)


async def test_a_gate_outside_an_egress_call_refuses() -> None:
    inner = Reveal()
    with pytest.raises(EgressError, match="outside an egress call"):
        await _gate(inner).apply(_values("a"), _ctx(RecordingAuditor(), MemoryRateLimiter()))
    assert inner.seen == 0


async def test_detokenize_entries_become_egress_releases() -> None:
    auditor = RecordingAuditor()
    egress = EgressAuditor(auditor, "api.pay.example", 8443)
    await egress.emit(
        "token.detokenize",
        route="pay",
        rule="request[0]",
        field_class="pan",
        subject="egress:backend",
        decision="allow",
        reason="roles",
        count=1,
        record_ids=["0" * 32],
    )
    await egress.emit("gateway.stop", reason="x")
    assert [e for e, _ in auditor.events] == ["egress.detokenize", "gateway.stop"]
    assert (auditor.events[0][1]["host"], auditor.events[0][1]["port"]) == ("api.pay.example", 8443)
    assert "host" not in auditor.events[1][1]
