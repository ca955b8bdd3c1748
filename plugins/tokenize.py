"""The ``tokenize`` action: swap each value for a token of its field class (one vault call).

Rules:
- the whole batch goes to ``ctx.vault.tokenize`` in ONE call (one store round
  trip); a raised vault error fails the message closed;
- records are owned by the session's ``sub`` (none on unauthenticated
  routes) and made for ``ctx.tenant``;
- strings are tokenized as they are; integers by their decimal text (so the
  token and later the detokenized value are strings); floats and booleans
  are invalid for the rule (their text is not stable);
- null and "" are left as they are: there is nothing to protect;
- a value that does not fit the class's format (and the class says
  ``on_mismatch: error``) is invalid: ``value does not fit format <kind>``,
  never echoing the value.

No audit entry per message: making a token reveals nothing; the records
themselves are the trace. Detokenize is the audited act.

Options (YAML)::

    - action: tokenize
      class: ssn          # required: a class declared in the policy
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from pydantic import Field

from plugins.base import ActionContext, FieldClass, FieldResult, FieldValue
from plugins.options import NOT_TEXT, ClassOption, StrictOptions, as_text, parse_options
from vault.api import FormatMismatch, TokenizeItem


class TokenizeOptions(StrictOptions):
    """Options of ``tokenize``."""

    field_class: ClassOption = Field(alias="class")


class Tokenize:
    """Replace values by tokens of one field class."""

    name: ClassVar[str] = "tokenize"

    def __init__(self) -> None:
        self._class: FieldClass | None = None

    def configure(self, options: Mapping[str, object]) -> None:
        """Keep the rule's class."""
        self._class = parse_options(TokenizeOptions, options, "tokenize").field_class

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """Tokens for every text value, from one vault call."""
        if self._class is None:
            raise RuntimeError("tokenize: not configured")
        spec = self._class.spec
        out: list[FieldResult | None] = [None] * len(batch)
        todo: list[int] = []
        items: list[TokenizeItem] = []
        for i, item in enumerate(batch):
            if item.value is None or item.value == "":
                out[i] = FieldResult.replace(item.value)
            elif (text := as_text(item.value)) is None:
                out[i] = FieldResult.invalid(NOT_TEXT)
            else:
                todo.append(i)
                items.append(TokenizeItem(text, spec, ctx.subject.sub, ctx.tenant))
        if items:
            tokens = await ctx.vault.tokenize(items)
            if len(tokens) != len(items):
                raise RuntimeError("tokenize: the vault answered a different number of items")
            for i, token in zip(todo, tokens, strict=True):
                out[i] = _result(token, spec.format.kind)
        return [r for r in out if r is not None]


def _result(token: str | FormatMismatch, kind: str) -> FieldResult:
    if isinstance(token, FormatMismatch):
        return FieldResult.invalid(f"value does not fit format {kind}")
    return FieldResult.replace(token)
