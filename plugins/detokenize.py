"""The ``detokenize`` action: reveal values to allowed subjects, ``otherwise`` to the rest.

Rules:
- the batch goes to ``ctx.vault.detokenize`` in ONE call; a raised vault
  error fails the message closed;
- each revealed record is decided by the ``allow`` rule
  (:mod:`plugins.authorize`) on (subject, record metadata, ``ctx.now``);
- ``otherwise`` is what a denied subject gets: ``mask`` (the class's or this
  rule's ``mask`` pattern over the plaintext), ``redact`` ("[REDACTED]"),
  ``keep-token`` (the token as the backend sent it) or ``deny`` (403 for the
  whole message). Default: ``mask`` when a pattern is known, else ``redact``;
- fail closed on anything that is not a token of the class: refused tokens
  (malformed, unknown, erased, revoked key), a record of another class, and
  values that are not text (floats, booleans) never reveal anything. They
  get ``otherwise`` applied to the text itself, except that ``keep-token``
  becomes ``redact`` (the text may be plaintext the backend kept) and they
  are audited as deny with the reason;
- with ``rate_limit``, the allowed values of a batch are counted per
  (subject, class) in the limiter; if the batch would pass the limit, ALL
  its allowed values get ``otherwise`` (reason ``rate_limited``) and an
  alert is raised (:mod:`plugins.disclosure`);
- every decision is audited (grouped) BEFORE a value leaves the action;
- null and "" are left as they are and not audited (nothing to reveal);
  integers are read as their decimal text (a numeric token the backend
  stored as a number; such a token loses leading zeros, so classes whose
  tokens may travel as JSON numbers should keep leading digits).

Options (YAML)::

    - action: detokenize
      class: ssn
      allow:
        - owner: true
        - {roles: [support], mfa: true, max_age: 15m}
      otherwise: mask            # mask | redact | keep-token | deny
      mask: "***-**-{last4}"     # optional; default the class's mask
      rate_limit: {limit: 100, window: 1h}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from plugins.authorize import AllowRule, Condition
from plugins.base import ActionContext, FieldClass, FieldResult, FieldValue, Scalar
from plugins.disclosure import Ledger, alert_rate_limited, subject_name
from plugins.mask import MaskPattern, PatternOption, pattern_for
from plugins.options import ClassOption, Duration, StrictOptions, as_text, parse_options
from plugins.redact import REDACTED
from vault.api import DetokenizeItem, Refused, Revealed

type Otherwise = Literal["mask", "redact", "keep-token", "deny"]


class RateLimitOptions(StrictOptions):
    """At most ``limit`` values of the class per subject per ``window``."""

    limit: int = Field(ge=1)
    window: Duration = Field(gt=0)


def _as_list(value: object) -> object:
    """``allow`` as one mapping is a list of one alternative."""
    return [value] if isinstance(value, Mapping) else value


class DetokenizeOptions(StrictOptions):
    """Options of ``detokenize``."""

    field_class: ClassOption = Field(alias="class")
    allow: Annotated[list[Condition], BeforeValidator(_as_list)] = Field(min_length=1)
    otherwise: Otherwise | None = None
    mask: PatternOption | None = None
    rate_limit: RateLimitOptions | None = None

    @model_validator(mode="after")
    def _coherent(self) -> DetokenizeOptions:
        if self.mask is not None and self.otherwise not in (None, "mask"):
            raise ValueError("'mask' is only used with 'otherwise: mask'")
        if self.otherwise == "mask" and pattern_for(self.mask, self.field_class) is None:
            raise ValueError("'otherwise: mask' needs 'mask' or a class with a mask")
        return self


class Detokenize:
    """Reveal, mask, redact, keep or deny each token of one class."""

    name: ClassVar[str] = "detokenize"

    def __init__(self) -> None:
        self._class: FieldClass | None = None
        self._allow = AllowRule(())
        self._otherwise: Otherwise = "redact"
        self._pattern: MaskPattern | None = None
        self._limit: RateLimitOptions | None = None

    def configure(self, options: Mapping[str, object]) -> None:
        """Validate the rule once; a contradiction is a load error."""
        parsed = parse_options(DetokenizeOptions, options, "detokenize")
        self._class = parsed.field_class
        self._allow = AllowRule.of(parsed.allow)
        self._pattern = pattern_for(parsed.mask, parsed.field_class)
        self._otherwise = parsed.otherwise or ("mask" if self._pattern else "redact")
        self._limit = parsed.rate_limit

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """One result per value; decisions audited before anything is returned."""
        if self._class is None:
            raise RuntimeError("detokenize: not configured")
        ledger = Ledger(self._class.name, self._otherwise)
        out: list[FieldResult | None] = [None] * len(batch)
        todo: list[tuple[int, str]] = []
        for i, item in enumerate(batch):
            if item.value is None or item.value == "":
                out[i] = FieldResult.replace(item.value)
            elif (text := as_text(item.value)) is None:
                out[i] = self._unrevealed(item.value, "not_text", None, ledger)
            else:
                todo.append((i, text))
        allowed = await self._decide(todo, ctx, out, ledger)
        await self._release(allowed, ctx, out, ledger)
        await ledger.emit(ctx)
        return [r for r in out if r is not None]

    async def _decide(
        self,
        todo: list[tuple[int, str]],
        ctx: ActionContext,
        out: list[FieldResult | None],
        ledger: Ledger,
    ) -> list[tuple[int, str, Revealed, str]]:
        """Resolve every token (one vault call); fill denials, return the allowed ones."""
        if not todo or self._class is None:
            return []
        spec = self._class.spec
        answers = await ctx.vault.detokenize([DetokenizeItem(t, spec) for _, t in todo])
        if len(answers) != len(todo):
            raise RuntimeError("detokenize: the vault answered a different number of items")
        allowed: list[tuple[int, str, Revealed, str]] = []
        decide = self._allow.decider(ctx.subject, ctx.now)
        for (i, text), answer in zip(todo, answers, strict=True):
            if isinstance(answer, Refused):
                out[i] = self._unrevealed(text, answer.reason, answer.id_hash, ledger)
            elif answer.record.field_class != spec.name:
                out[i] = self._unrevealed(text, "wrong_class", answer.id_hash, ledger)
            else:
                decision = decide(answer.record)
                if decision.allow:
                    allowed.append((i, text, answer, decision.reason))
                else:
                    out[i] = self._withheld(text, answer.value, decision.reason)
                    ledger.add(False, decision.reason, answer.id_hash)
        return allowed

    async def _release(
        self,
        allowed: list[tuple[int, str, Revealed, str]],
        ctx: ActionContext,
        out: list[FieldResult | None],
        ledger: Ledger,
    ) -> None:
        """Reveal the allowed values, unless the subject's rate limit says no."""
        if not allowed or self._class is None:
            return
        if self._limit is not None:
            key = f"detokenize:{self._class.name}:{subject_name(ctx)}"
            limit, window = self._limit.limit, self._limit.window
            if not await ctx.limiter.take(key, len(allowed), limit=limit, window=window):
                await alert_rate_limited(ctx, self._class.name, len(allowed), limit, window)
                for i, token, revealed, _ in allowed:
                    out[i] = self._withheld(token, revealed.value, "rate_limited")
                    ledger.add(False, "rate_limited", revealed.id_hash)
                return
        for i, _, revealed, reason in allowed:
            out[i] = FieldResult.replace(revealed.value)
            ledger.add(True, reason, revealed.id_hash)

    def _withheld(self, token: str, plaintext: str, reason: str) -> FieldResult:
        """``otherwise`` for a real token of the class that this subject may not see."""
        match self._otherwise:
            case "mask" if self._pattern is not None:
                return FieldResult.replace(self._pattern.render(plaintext))
            case "keep-token":
                return FieldResult.replace(token)
            case "deny":
                return FieldResult.deny(reason)
            case _:
                return FieldResult.replace(REDACTED)

    def _unrevealed(
        self, value: Scalar, reason: str, id_hash: str | None, ledger: Ledger
    ) -> FieldResult:
        """``otherwise`` for what is not a token of the class: never keep it, never reveal."""
        ledger.add(False, reason, id_hash)
        text = as_text(value)
        match self._otherwise:
            case "mask" if self._pattern is not None and text is not None:
                return FieldResult.replace(self._pattern.render(text))
            case "deny":
                return FieldResult.deny(reason)
            case _:
                return FieldResult.replace(REDACTED)
