"""The ``tee`` action: send a field's values to a named job in the attested TEE pool.

Rules:
- all values of one message for the rule go as ONE job (one KMS grant, one
  worker call) through ``ctx.tee`` (:class:`tee.jobs.JobRunner`), which picks
  an attested worker, double-envelopes the batch and opens the sealed answer;
- what is written back: with ``accept``, the job is a check and the value
  itself goes on; a result ``accept`` does not match refuses the message
  (400 naming the rule, never the value or the result). ``accept`` is a list
  of results (exact strings), or a mapping that the result, read as a JSON
  object, must contain (``{valid: true}`` matches ``{"brand":"visa","valid":true}``).
  Without ``accept``, the job's result replaces the value;
- with ``class``, what goes on is tokenized (one vault call) before it leaves
  the action, so a check of plaintext in the TEE and its tokenization are ONE
  rule. This is deliberate: a location belongs to the first rule that
  selects it and rules run concurrently (:mod:`policy.transform`), so a
  second rule on the same field would never see it;
- strings go as they are, integers by their decimal text; floats and
  booleans are invalid for the rule; null and "" are left as they are;
- any failure (no attested worker, KMS refusal, worker error, bad answer,
  no ``tee:`` section in gateway.yaml) raises and fails the message closed
  (503). Values and results are never logged or put into errors.

Options (YAML)::

    - field: $.card_number
      action: tee
      job: card_check        # required: a job of the workers' bundle
      accept: {valid: true}  # optional: the job is a check; other results refuse (400)
      class: pan             # optional: tokenize what goes on (the checked value)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, ClassVar

from pydantic import Field

from plugins.base import ActionContext, FieldClass, FieldResult, FieldValue, Scalar
from plugins.options import NOT_TEXT, ClassOption, StrictOptions, as_text, parse_options
from plugins.tokenize import Tokenize
from tee.errors import TeeError

REFUSED = "refused by its tee job"


class TeeOptions(StrictOptions):
    """Options of ``tee``."""

    job: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    accept: list[Annotated[str, Field(max_length=256)]] | dict[str, Scalar] | None = Field(
        None, min_length=1
    )
    field_class: ClassOption | None = Field(None, alias="class")


class NoTeePool(TeeError):
    """A rule uses ``tee`` but the gateway has no TEE pool configured (503)."""

    code = "tee_unavailable"


class Tee:
    """Process values in the TEE pool: check them, or replace them by the job's result."""

    name: ClassVar[str] = "tee"

    def __init__(self) -> None:
        self._job = ""
        self._accept: Callable[[str], bool] | None = None
        self._class: FieldClass | None = None
        self._tokenize: Tokenize | None = None

    def configure(self, options: Mapping[str, object]) -> None:
        """Keep the job, the accepted results and the class to tokenize with."""
        parsed = parse_options(TeeOptions, options, "tee")
        self._job = parsed.job
        self._accept = _matcher(parsed.accept)
        self._class = parsed.field_class
        if self._class is not None:
            self._tokenize = Tokenize()
            self._tokenize.configure({"class": self._class})

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """One job for the batch's text values, then the write-back the options say."""
        if not self._job:
            raise RuntimeError("tee: not configured")
        if ctx.tee is None:
            raise NoTeePool(f"tee: rule {ctx.rule} needs the tee: section of gateway.yaml")
        out: list[FieldResult | None] = [None] * len(batch)
        todo: list[int] = []
        texts: list[str] = []
        for i, item in enumerate(batch):
            if item.value is None or item.value == "":
                out[i] = FieldResult.replace(item.value)
            elif (text := as_text(item.value)) is None:
                out[i] = FieldResult.invalid(NOT_TEXT)
            else:
                todo.append(i)
                texts.append(text)
        if texts:
            results = await ctx.tee.run(
                self._job, texts, tenant=ctx.tenant, request_id=ctx.request_id
            )
            if len(results) != len(texts):
                raise RuntimeError("tee: the pool answered a different number of values")
            passed = self._passed(todo, texts, results, out)
            await self._write(passed, batch, out, ctx)
        return [r for r in out if r is not None]

    def _passed(
        self,
        todo: list[int],
        texts: list[str],
        results: list[str],
        out: list[FieldResult | None],
    ) -> list[tuple[int, str]]:
        """(index, value that goes on) for every value the job did not refuse."""
        accept = self._accept
        passed: list[tuple[int, str]] = []
        for i, text, result in zip(todo, texts, results, strict=True):
            if accept is None:
                passed.append((i, result))
            elif accept(result):
                passed.append((i, text))
            else:
                out[i] = FieldResult.invalid(REFUSED)
        return passed

    async def _write(
        self,
        passed: list[tuple[int, str]],
        batch: Sequence[FieldValue],
        out: list[FieldResult | None],
        ctx: ActionContext,
    ) -> None:
        if self._tokenize is None:
            for i, value in passed:
                out[i] = FieldResult.replace(value)
            return
        items = [FieldValue(value, batch[i].location) for i, value in passed]
        tokens = await self._tokenize.apply(items, ctx) if items else []
        for (i, _), token in zip(passed, tokens, strict=True):
            out[i] = token


def _matcher(accept: list[str] | dict[str, Scalar] | None) -> Callable[[str], bool] | None:
    """The test a job's result must pass (None: the job is not a check)."""
    if accept is None:
        return None
    if isinstance(accept, list):
        accepted = frozenset(accept)
        return accepted.__contains__
    wanted = dict(accept)

    def contains(result: str) -> bool:
        try:
            doc = json.loads(result)
        except ValueError:
            return False
        return isinstance(doc, dict) and all(
            k in doc and doc[k] == v and type(doc[k]) is type(v) for k, v in wanted.items()
        )

    return contains
