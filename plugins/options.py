"""Option parsing shared by every action: strict models, durations, text values.

Options are validated once, in ``configure`` (at policy load). Every model
forbids unknown keys, so a typo in a security rule is an error, not a line
silently ignored, and types are strict (``"yes"`` is not ``true``). Errors
become one short ``ValueError`` naming the action and the option, never the
option's value (it might be a secret-looking replacement or a claim value).

Durations accept ``250ms``, ``5s``, ``15m``, ``1h``, ``1d`` or a number of
seconds: the same forms as the policy's, parsed here because plugins must
not import ``policy``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from plugins.base import FieldClass, Scalar

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """``15m`` / ``250ms`` / a number of seconds -> seconds (float, >= 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s or 15m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError("expected a duration like 30s or 15m")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class StrictOptions(BaseModel):
    """Base of every options model: unknown keys refused, immutable, FieldClass allowed."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        arbitrary_types_allowed=True,
        populate_by_name=True,
    )


def parse_options[M: StrictOptions](model: type[M], options: Mapping[str, object], what: str) -> M:
    """Validate ``options`` into ``model``; a problem raises ``ValueError('<what>: ...')``."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as e:
        raise ValueError(f"{what}: {describe(e)}") from None


def describe(error: ValidationError) -> str:
    """The first problem of a validation error, naming the option path but not the input."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    extra = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"option '{where}': {message}{extra}" if where else f"{message}{extra}"


def field_class(value: object) -> FieldClass:
    """Accept only a resolved :class:`FieldClass` (the policy loader resolves class names)."""
    if not isinstance(value, FieldClass):
        raise ValueError("must name a field class declared in the policy")
    return value


ClassOption = Annotated[FieldClass, BeforeValidator(field_class)]


def as_text(value: Scalar) -> str | None:
    """The text an action works on: strings as they are, integers in decimal, else None.

    Integers are accepted because card and account numbers often travel as
    JSON numbers; floats and booleans are refused (their text is not stable).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


NOT_TEXT = "value is not text or an integer"
