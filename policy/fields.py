"""Field rules and field classes as policy files declare them.

A field class (``ssn``, ``pan``, ``email``) is declared once, under
``classes:`` in any policy file, and referenced by name from rules. It says
how its tokens look (the vault's :class:`~vault.api.TokenFormat`), how long
records live and its default mask.

Contradictions refused here, each with its own message:
- ``prefix`` only shapes opaque and deterministic tokens: 1-16 of a-z 0-9,
  starting with a letter (``_`` separates prefix from body, so it is not allowed).
- ``keep_first`` / ``keep_last`` only apply to numeric, pan and ssn formats,
  and must leave digits to randomize: pan keeps at most the first 8 and the
  last 4 (PCI DSS display limits); ssn keeps at most 5 of its 9 digits in
  total; numeric at most 16 in total.
- ``luhn_valid`` only applies to pan; ``on_mismatch: opaque`` only to the
  shaped formats (numeric, pan, ssn), the others fit any value.
- ``ttl`` is at least one second; ``mask`` must parse as a mask pattern
  (:mod:`plugins.mask`: ``{firstN}`` / ``{lastN}`` placeholders only).

A field rule is ``{field, action, class?, ...options}``: ``field`` is a
selector (:mod:`policy.selectors`), ``action`` a registered field action,
``class`` a declared class name, and every other key an option of the action,
which the action validates when the policy is compiled (an unknown option is
the action's error, so typos do not pass silently).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from plugins.base import FieldClass
from plugins.mask import MaskPattern
from policy.selectors import parse_selector
from policy.types import Duration, StrictModel
from vault.api import ClassSpec, FormatKind, TokenFormat

CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_SHAPED = frozenset({"numeric", "pan", "ssn"})
_KEEP_LIMITS = {"numeric": (16, 16, 16), "pan": (8, 4, 12), "ssn": (5, 5, 5)}  # first, last, sum

FormatName = Literal["opaque", "uuid", "numeric", "pan", "ssn", "deterministic"]


class ClassDecl(StrictModel):
    """A field class: the shape of its tokens, their lifetime and the default mask."""

    format: FormatName = Field("opaque", description="token format (what each leaks: see docs)")
    prefix: str | None = Field(
        None, description="token prefix for opaque and deterministic tokens; default tok"
    )
    keep_first: int = Field(0, ge=0, description="numeric/pan/ssn: leading digits kept")
    keep_last: int = Field(0, ge=0, description="numeric/pan/ssn: trailing digits kept")
    luhn_valid: bool = Field(
        False, description="pan: make tokens Luhn-valid (default: never a real card number)"
    )
    on_mismatch: Literal["error", "opaque"] = Field(
        "error", description="numeric/pan/ssn: a value of another shape is refused or made opaque"
    )
    ttl: Duration | None = Field(None, description="record lifetime; absent = persistent")
    mask: str | None = Field(None, description="default mask pattern, e.g. ***-**-{last4}")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None and not _PREFIX.match(v):
            raise ValueError("prefix must be 1-16 of a-z 0-9 starting with a letter")
        return v

    @field_validator("mask")
    @classmethod
    def _mask(cls, v: str | None) -> str | None:
        if v is not None:
            if not (0 < len(v) <= 128 and v.isprintable()):
                raise ValueError("mask must be 1-128 printable characters")
            MaskPattern(v)  # the mask action's own parser: a bad pattern fails here, at load
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: float | None) -> float | None:
        if v is not None and v < 1:
            raise ValueError("ttl must be at least 1s; leave it out for persistent records")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ClassDecl:
        fmt = self.format
        if self.prefix is not None and fmt not in ("opaque", "deterministic"):
            raise ValueError(f"prefix applies to opaque and deterministic tokens, not {fmt}")
        if self.luhn_valid and fmt != "pan":
            raise ValueError(f"luhn_valid applies to the pan format, not {fmt}")
        if self.on_mismatch == "opaque" and fmt not in _SHAPED:
            raise ValueError(f"on_mismatch applies to numeric, pan and ssn, not {fmt}")
        if (self.keep_first or self.keep_last) and fmt not in _SHAPED:
            raise ValueError(f"keep_first and keep_last apply to numeric, pan and ssn, not {fmt}")
        if fmt in _KEEP_LIMITS:
            first, last, total = _KEEP_LIMITS[fmt]
            if self.keep_first > first or self.keep_last > last:
                raise ValueError(f"{fmt} keeps at most the first {first} and last {last} digits")
            if self.keep_first + self.keep_last > total:
                raise ValueError(f"{fmt} keeps at most {total} digits in total")
        return self

    def field_class(self, name: str) -> FieldClass:
        """The class as plugins and the vault see it."""
        fmt = TokenFormat(
            kind=FormatKind(self.format),
            prefix=self.prefix or "tok",
            keep_first=self.keep_first,
            keep_last=self.keep_last,
            luhn_valid=self.luhn_valid,
            on_mismatch=self.on_mismatch,
        )
        ttl = None if self.ttl is None else math.ceil(self.ttl)
        return FieldClass(ClassSpec(name=name, format=fmt, ttl=ttl), mask=self.mask)


class FieldRule(StrictModel):
    """One field rule: a selector, an action, an optional class and the action's options."""

    # Keys other than field / action / class are the action's options.
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    field: str = Field(
        description="selector: $.a.b, $.items[*].ssn, $..ssn, form:NAME, query:NAME, header:NAME"
    )
    action: str = Field(description="field action: tokenize, detokenize, redact, mask, hash, ...")
    field_class: str | None = Field(
        None, alias="class", description="field class declared under classes:"
    )

    @field_validator("field")
    @classmethod
    def _field(cls, v: str) -> str:
        return str(parse_selector(v))

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if not _ACTION.match(v):
            raise ValueError("action must be a name like tokenize or mask")
        return v

    @field_validator("field_class")
    @classmethod
    def _class(cls, v: str | None) -> str | None:
        if v is not None and not CLASS_NAME.match(v):
            raise ValueError("class must be 1-32 of a-z 0-9 _ starting with a letter")
        return v

    @property
    def options(self) -> dict[str, object]:
        """The action's options (every key but field, action and class)."""
        return dict(self.model_extra or {})
