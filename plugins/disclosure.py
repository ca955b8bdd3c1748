"""Audit of detokenize decisions and the rate-limit alert.

Rules:
- decisions are grouped per message and rule by (decision, reason): one
  ``token.detokenize`` entry per group carries the count and the audit_id()
  hashes of its records (chunked at :data:`MAX_IDS` per entry), never a token
  or a value;
- every entry is emitted BEFORE any value leaves the action; an emit that
  raises fails the message (the act is refused, DESIGN.md principle 5);
- a rate-limit hit is an alert three ways: a ``token.rate_limited`` audit
  entry, a warning log line and the ``tokengate_detokenize_rate_limited``
  counter (labels are config names only: route and class).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from prometheus_client import Counter

from plugins.base import ActionContext

MAX_IDS = 500  # = the declared max_items of token.detokenize record_ids

log = logging.getLogger("tokengate.plugins")

RATE_LIMITED = Counter(
    "tokengate_detokenize_rate_limited",
    "Detokenize batches withheld because a subject hit its rate limit, by route and class.",
    ("route", "field_class"),
)


def subject_name(ctx: ActionContext) -> str:
    """The subject as audit entries name it."""
    return ctx.subject.sub if ctx.subject.sub is not None else "anonymous"


@dataclass(slots=True)
class _Group:
    count: int = 0
    ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Ledger:
    """Decisions of one message and rule, grouped for the audit log."""

    field_class: str
    otherwise: str
    groups: dict[tuple[bool, str], _Group] = field(default_factory=dict)

    def add(self, allow: bool, reason: str, id_hash: str | None) -> None:
        """Count one value's decision (``id_hash`` None when the token did not parse)."""
        group = self.groups.get((allow, reason))
        if group is None:
            group = self.groups[allow, reason] = _Group()
        group.count += 1
        if id_hash is not None:
            group.ids.append(id_hash)

    async def emit(self, ctx: ActionContext) -> None:
        """One entry per group (and per :data:`MAX_IDS` ids); raises if one is not persisted."""
        for (allow, reason), group in self.groups.items():
            chunks = [group.ids[i : i + MAX_IDS] for i in range(0, len(group.ids), MAX_IDS)]
            counts = _spread(group.count, len(chunks))
            for ids, count in zip(chunks or [[]], counts, strict=True):
                await ctx.audit.emit(
                    "token.detokenize",
                    route=ctx.route,
                    rule=ctx.rule,
                    field_class=self.field_class,
                    subject=subject_name(ctx),
                    decision="allow" if allow else "deny",
                    reason=reason,
                    otherwise=None if allow else self.otherwise,
                    count=count,
                    record_ids=ids,
                    request_id=ctx.request_id,
                )


def _spread(total: int, chunks: int) -> list[int]:
    """Split ``total`` values over id chunks: each chunk's ids, the rest on the last."""
    if chunks <= 1:
        return [total]
    return [MAX_IDS] * (chunks - 1) + [total - MAX_IDS * (chunks - 1)]


async def alert_rate_limited(
    ctx: ActionContext, field_class: str, count: int, limit: int, window: float
) -> None:
    """Audit, log and count one rate-limit hit (the audit emit may raise: fail closed)."""
    RATE_LIMITED.labels(ctx.route, field_class).inc()
    log.warning(
        "detokenize rate limit hit: route=%s rule=%s class=%s subject=%s count=%d limit=%d "
        "request_id=%s",
        ctx.route,
        ctx.rule,
        field_class,
        subject_name(ctx),
        count,
        limit,
        ctx.request_id,
    )
    await ctx.audit.emit(
        "token.rate_limited",
        route=ctx.route,
        rule=ctx.rule,
        field_class=field_class,
        subject=subject_name(ctx),
        count=count,
        limit=limit,
        window=math.ceil(window),
        request_id=ctx.request_id,
    )
