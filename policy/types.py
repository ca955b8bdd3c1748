"""Small value types shared by every config model: durations, byte sizes, the strict base.

Durations accept ``250ms``, ``5s``, ``2m``, ``1h`` or a bare number of seconds.
Byte sizes accept ``512``, ``64KiB``, ``10MiB``, ``1GiB`` (pydantic's ByteSize).
Every model forbids unknown keys: a typo in a security config is an error, not
a silently ignored line.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ByteSize, ConfigDict, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Turn ``5s`` / ``250ms`` / ``2m`` / a number into seconds (float, >= 0)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5s or 250ms")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError("expected a duration like 5s or 250ms")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
            ],
            "description": "seconds, or a string like 250ms, 5s, 2m, 1h",
        }
    ),
]

Bytes = Annotated[
    ByteSize,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[A-Za-z]*\s*$"},
            ],
            "description": "bytes, or a string like 64KiB, 10MiB, 1GiB",
        }
    ),
]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)
