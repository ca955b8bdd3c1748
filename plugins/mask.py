"""The ``mask`` action and mask patterns such as ``***-**-{last4}``.

Pattern rules:
- ``{firstN}`` / ``{lastN}`` (N from 1 to 32; ``{first6}``, ``{last4}``) are
  replaced by the first / last N *letters and digits* of the value;
  separators (``-``, spaces, ``.``, ``@``, ...) are skipped, so
  ``123-45-6789`` and ``123456789`` mask alike. Every other character of the
  pattern is literal; any other ``{...}`` is refused at load.
- Never reveal too much: when fewer than :data:`MIN_HIDDEN` letters and digits
  of the value would stay hidden, every placeholder renders as N ``*`` and
  nothing of the value shows (a value shorter than the pattern asks for
  reveals nothing extra, never the whole value).
- The output's length depends on the pattern only, never on the value.

Options (YAML)::

    - action: mask
      class: ssn               # optional: the class's mask is the default pattern
      pattern: "***-**-{last4}"

Values: strings and integers are masked; null and "" are left as they are;
floats and booleans are invalid for the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field, model_validator

from plugins.base import ActionContext, FieldClass, FieldResult, FieldValue, Scalar
from plugins.options import NOT_TEXT, ClassOption, StrictOptions, as_text, parse_options

MIN_HIDDEN = 4
MAX_PLACEHOLDER = 32
_PLACEHOLDER = re.compile(r"\{(first|last)(\d{1,2})\}")


@dataclass(frozen=True, slots=True)
class _Part:
    literal: str = ""
    side: str = ""  # "first" | "last" for a placeholder
    count: int = 0


class MaskPattern:
    """A parsed mask pattern; parse once at load, render per value."""

    __slots__ = ("_parts", "_revealed", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._parts = _parse(text)
        self._revealed = sum(p.count for p in self._parts)

    def render(self, value: str) -> str:
        """The masked form of ``value`` (see the module rules)."""
        chars = [c for c in value if c.isalnum()]
        show = len(chars) - self._revealed >= MIN_HIDDEN
        out: list[str] = []
        for part in self._parts:
            if not part.count:
                out.append(part.literal)
            elif not show:
                out.append("*" * part.count)
            elif part.side == "first":
                out.append("".join(chars[: part.count]))
            else:
                out.append("".join(chars[-part.count :]))
        return "".join(out)


def _parse(text: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        parts.append(_Part(literal=text[pos : m.start()]))
        count = int(m.group(2))
        if not 1 <= count <= MAX_PLACEHOLDER:
            raise ValueError(f"mask placeholder {m.group(0)} must reveal 1 to {MAX_PLACEHOLDER}")
        parts.append(_Part(side=m.group(1), count=count))
        pos = m.end()
    parts.append(_Part(literal=text[pos:]))
    if any("{" in p.literal or "}" in p.literal for p in parts):
        raise ValueError("mask pattern allows only {firstN} and {lastN} placeholders")
    if not text:
        raise ValueError("mask pattern is empty")
    return tuple(p for p in parts if p.count or p.literal)


def check_pattern(text: str) -> str:
    """Validate a pattern at load (for options models); the text unchanged."""
    MaskPattern(text)
    return text


PatternOption = Annotated[str, AfterValidator(check_pattern)]


def pattern_for(explicit: str | None, cls: FieldClass | None) -> MaskPattern | None:
    """The rule's pattern, else its class's mask, else None."""
    text = explicit if explicit is not None else (cls.mask if cls is not None else None)
    return MaskPattern(text) if text is not None else None


class MaskOptions(StrictOptions):
    """Options of ``mask``."""

    field_class: ClassOption | None = Field(default=None, alias="class")
    pattern: PatternOption | None = None

    @model_validator(mode="after")
    def _has_pattern(self) -> MaskOptions:
        if pattern_for(self.pattern, self.field_class) is None:
            raise ValueError("needs 'pattern' or a class with a mask")
        return self


class Mask:
    """Replace each value by its masked form."""

    name: ClassVar[str] = "mask"

    def __init__(self) -> None:
        self._pattern: MaskPattern | None = None

    def configure(self, options: Mapping[str, object]) -> None:
        """Parse the pattern once (a bad pattern is a load error)."""
        parsed = parse_options(MaskOptions, options, "mask")
        self._pattern = pattern_for(parsed.pattern, parsed.field_class)

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """One masked value per input."""
        if self._pattern is None:
            raise RuntimeError("mask: not configured")
        return [mask_result(self._pattern, item.value) for item in batch]


def mask_result(pattern: MaskPattern, value: Scalar) -> FieldResult:
    """Mask one value (null and "" stay; non-text is invalid)."""
    if value is None or value == "":
        return FieldResult.replace(value)
    text = as_text(value)
    if text is None:
        return FieldResult.invalid(NOT_TEXT)
    return FieldResult.replace(pattern.render(text))
