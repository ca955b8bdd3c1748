"""What one egress call may release: the per-request cap, the per-client rate, the audit names.

Rules:
- Every ``detokenize`` rule of an egress route runs behind a
  :class:`ReleaseGate`. Before the rule's action sees its batch, the gate
  counts the values it would reveal (every value but null and "") against
  the request's :class:`ReleaseBudget` (the route's ``release.max_values``,
  shared by all rules of the request) and then against the client's window
  for the route (``rate_limit``, in the gateway's detokenize rate limiter,
  key ``egress:<route>:<subject>``). Either refusal raises
  :class:`~proxy.egress.errors.ReleaseRefused` before the vault is asked:
  the whole call is refused (403 / 429), nothing is sent on, and an
  ``egress.refused`` entry is written first.
- The budget lives in a context variable set by the relay around one
  request's transform: the transformer's concurrent rule tasks copy the
  context and so share the one budget. A gate that finds no budget refuses
  (it is not inside an egress call).
- :class:`EgressAuditor` is the audit port the relay gives field actions: the
  detokenize action's ``token.detokenize`` entries are written as
  ``egress.detokenize`` (a release to a third party, not to a browser), and
  every ``egress.*`` entry carries the destination host and port. It also
  tallies, per field class, the values whose release was allowed and
  written (``released``), for the relay's metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import ClassVar

from kms_client.audit_port import Auditor, AuditValue
from plugins.base import ActionContext, FieldAction, FieldResult, FieldValue
from plugins.disclosure import subject_name
from proxy.egress.errors import EgressError, ReleaseRefused
from proxy.egress.model import ReleaseRateLimit


@dataclass(slots=True)
class ReleaseBudget:
    """Values one request may still release (starts at the route's ``max_values``)."""

    left: int


_BUDGET: ContextVar[ReleaseBudget | None] = ContextVar("tokengate_egress_budget", default=None)


@contextmanager
def release_budget(max_values: int) -> Iterator[ReleaseBudget]:
    """Give the gates of the code inside a budget of ``max_values`` values."""
    budget = ReleaseBudget(max_values)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


class ReleaseGate:
    """A configured ``detokenize`` action behind the route's cap and the client's rate limit."""

    name: ClassVar[str] = "detokenize"

    def __init__(self, inner: FieldAction, *, field_class: str, rate: ReleaseRateLimit) -> None:
        self._inner = inner
        self._class = field_class
        self._rate = rate

    def configure(self, options: Mapping[str, object]) -> None:
        """Reconfigure the wrapped action (the gate's own limits are fixed at compile time)."""
        self._inner.configure(options)

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """The wrapped action's results, once the values fit the budget and the rate."""
        count = sum(1 for item in batch if item.value is not None and item.value != "")
        if count:
            await self._admit(count, ctx)
        return await self._inner.apply(batch, ctx)

    async def _admit(self, count: int, ctx: ActionContext) -> None:
        budget = _BUDGET.get()
        if budget is None:
            raise EgressError("internal_error", "a release gate ran outside an egress call")
        if count > budget.left:
            await self._refused(ctx, "release_cap", count)
            raise ReleaseRefused(
                "release_cap",
                f"{ctx.rule}: the request would release more values than route "
                f"'{ctx.route}' allows",
                public=True,
            )
        budget.left -= count
        key = f"egress:{ctx.route}:{subject_name(ctx)}"
        limit, window = self._rate.values, self._rate.window
        if not await ctx.limiter.take(key, count, limit=limit, window=window):
            await self._refused(ctx, "rate_limited", count)
            raise ReleaseRefused(
                "rate_limited",
                f"{ctx.rule}: this client's release budget for route '{ctx.route}' is used up",
                public=True,
            )

    async def _refused(self, ctx: ActionContext, reason: str, count: int) -> None:
        await ctx.audit.emit(
            "egress.refused",
            route=ctx.route,
            rule=ctx.rule,
            field_class=self._class,
            subject=subject_name(ctx),
            reason=reason,
            count=count,
            request_id=ctx.request_id,
        )


@dataclass(frozen=True, slots=True)
class EgressAuditor:
    """The audit port of one egress call: detokenizations are releases to ``host``."""

    inner: Auditor
    host: str
    port: int
    released: dict[str, int] = field(default_factory=dict)  # field class -> values allowed

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        """Write ``event``; ``token.detokenize`` as ``egress.detokenize``, with the host."""
        if event == "token.detokenize":
            event = "egress.detokenize"
        if event.startswith("egress."):
            fields = {**fields, "host": self.host, "port": self.port}
        await self.inner.emit(event, **fields)
        if event == "egress.detokenize" and fields.get("decision") == "allow":
            field_class, count = fields.get("field_class"), fields.get("count")
            if isinstance(field_class, str) and isinstance(count, int):
                self.released[field_class] = self.released.get(field_class, 0) + count
