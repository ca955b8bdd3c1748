"""The ``redact`` action: replace every value by a fixed replacement, or drop the field.

Options (YAML)::

    - action: redact                 # every value becomes "[REDACTED]"
    - action: redact
      replacement: null              # any scalar: a string, a number, null
    - action: redact
      remove: true                   # drop the field (JSON member removed, form field dropped)

``replacement`` and ``remove`` exclude each other. Nothing of the value is
kept, not even its length or whether it was null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from pydantic import Field, model_validator

from plugins.base import ActionContext, FieldResult, FieldValue, Scalar
from plugins.options import ClassOption, StrictOptions, parse_options

REDACTED = "[REDACTED]"


class RedactOptions(StrictOptions):
    """Options of ``redact``."""

    field_class: ClassOption | None = Field(default=None, alias="class")  # accepted, unused
    replacement: str | int | float | bool | None = REDACTED
    remove: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> RedactOptions:
        if self.remove and "replacement" in self.model_fields_set:
            raise ValueError("'replacement' and 'remove: true' exclude each other")
        return self


class Redact:
    """Replace (or remove) every value of the batch."""

    name: ClassVar[str] = "redact"

    def __init__(self) -> None:
        self._result = FieldResult.replace(REDACTED)

    def configure(self, options: Mapping[str, object]) -> None:
        """Fix the one result every value gets."""
        parsed = parse_options(RedactOptions, options, "redact")
        replacement: Scalar = parsed.replacement
        self._result = FieldResult.remove() if parsed.remove else FieldResult.replace(replacement)

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """The same result for every value."""
        return [self._result] * len(batch)
