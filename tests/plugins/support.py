"""Shared helpers for the plugin tests: a schema-checking auditor, classes, contexts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from audit.events import schema_for
from kms_client.audit_port import AuditValue
from plugins.base import (
    ActionContext,
    FieldAction,
    FieldClass,
    FieldResult,
    FieldValue,
    KeyedHasher,
    RateLimiter,
    Scalar,
    Subject,
)
from plugins.ratelimit import MemoryRateLimiter
from vault.api import (
    ClassSpec,
    DetokenizeItem,
    FormatKind,
    FormatMismatch,
    Refused,
    Revealed,
    TokenFormat,
    TokenizeItem,
    TokenVault,
)

NOW = 1_900_000_000.0

SSN = FieldClass(
    ClassSpec("ssn", TokenFormat(kind=FormatKind.SSN, keep_last=0)), mask="***-**-{last4}"
)
CARD = FieldClass(
    ClassSpec("card_number", TokenFormat(kind=FormatKind.PAN, keep_first=6, keep_last=4)),
    mask="{first6}******{last4}",
)
EMAIL = FieldClass(ClassSpec("email", TokenFormat(prefix="em")))  # opaque, no mask

ALICE = Subject(sub="alice", roles=frozenset({"customer"}), tenant="acme")
BOB = Subject(sub="bob", roles=frozenset({"customer"}), tenant="acme")
SUPPORT_MFA = Subject(
    sub="sam",
    roles=frozenset({"support"}),
    tenant="acme",
    amr=("pwd", "mfa"),
    auth_time=int(NOW) - 60,
)
ANONYMOUS = Subject()


class RecordingAuditor:
    """Keeps every event after checking it against the real declared schema."""

    def __init__(self, *, fail: bool = False) -> None:
        self.events: list[tuple[str, dict[str, AuditValue]]] = []
        self.fail = fail

    async def emit(self, event: str, /, **fields: AuditValue) -> None:
        schema_for(event).validate(fields)
        if self.fail:
            raise OSError("audit sink down")
        self.events.append((event, dict(fields)))

    def find(self, event: str, **match: AuditValue) -> list[dict[str, AuditValue]]:
        """Fields of every ``event`` whose fields include ``match``."""
        return [
            f for e, f in self.events if e == event and all(f.get(k) == v for k, v in match.items())
        ]

    def dump(self) -> str:
        """All events as JSON lines (to grep for values and tokens)."""
        return "\n".join(json.dumps([e, f], sort_keys=True) for e, f in self.events)


@dataclass
class Env:
    """What a test needs to build contexts: the real vault and keyring, an auditor, a limiter."""

    vault: TokenVault
    keys: KeyedHasher
    audit: RecordingAuditor = field(default_factory=RecordingAuditor)
    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)

    def ctx(
        self,
        subject: Subject = ALICE,
        *,
        direction: str = "response",
        now: float = NOW,
        tenant: str = "acme",
        rule: str = "response[0]",
    ) -> ActionContext:
        """A context for one message on route ``records``."""
        return ActionContext(
            route="records",
            rule=rule,
            direction="response" if direction == "response" else "request",
            subject=subject,
            vault=self.vault,
            keys=self.keys,
            audit=self.audit,
            limiter=self.limiter,
            now=now,
            request_id="req-1",
            tenant=tenant,
        )

    def with_audit(self, audit: RecordingAuditor) -> Env:
        """The same environment with another auditor."""
        return replace(self, audit=audit)


def values(*raw: Scalar) -> list[FieldValue]:
    """A batch of values at $.items[i].v."""
    return [FieldValue(v, f"$.items[{i}].v") for i, v in enumerate(raw)]


async def run(action: FieldAction, ctx: ActionContext, *raw: Scalar) -> list[FieldResult]:
    """Apply ``action`` and check the batch contract (same length)."""
    out = await action.apply(values(*raw), ctx)
    assert len(out) == len(raw)
    return out


def replaced(results: Sequence[FieldResult]) -> list[Scalar]:
    """The values of REPLACE results (fails on any other outcome)."""
    assert all(r.outcome == "replace" for r in results), [r.outcome for r in results]
    return [r.value for r in results]


class CountingVault:
    """The real vault, counting calls (to prove one round trip per batch)."""

    def __init__(self, inner: TokenVault) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def tokenize(self, items: Sequence[TokenizeItem]) -> list[str | FormatMismatch]:
        self.calls.append("tokenize")
        return await self.inner.tokenize(items)

    async def detokenize(self, items: Sequence[DetokenizeItem]) -> list[Revealed | Refused]:
        self.calls.append("detokenize")
        return await self.inner.detokenize(items)

    async def delete(self, items: Sequence[DetokenizeItem]) -> int:
        self.calls.append("delete")
        return await self.inner.delete(items)

    async def are_tokens(self, items: Sequence[DetokenizeItem]) -> list[bool]:
        self.calls.append("are_tokens")
        return await self.inner.are_tokens(items)
