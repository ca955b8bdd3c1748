"""Event schemas: which fields an audit event may carry, of which type.

An event is refused when it is not declared, when it names a field its schema
does not list, when a required field is missing, or when a value has the wrong
type, length or choice. That is what keeps plaintext out of the log: a caller
cannot attach a request body "just this once". Error messages name the event
and the field, never the value.

Values are :data:`AuditValue`: strings, integers, booleans, None and lists of
strings. No floats and no nested objects, so the canonical JSON of an entry is
exact (see :mod:`audit.canonical`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from audit.canonical import MAX_SAFE_INT
from audit.errors import AuditSchemaError

AuditValue = str | int | bool | None | list[str]

EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class FieldKind(StrEnum):
    """The JSON type of a field's value."""

    STR = "str"
    INT = "int"
    BOOL = "bool"
    STR_LIST = "list[str]"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One allowed field: its kind, whether it is required, and its bounds."""

    kind: FieldKind
    required: bool = False
    choices: frozenset[str] | None = None
    max_length: int = 256
    max_items: int = 64
    minimum: int = -MAX_SAFE_INT
    maximum: int = MAX_SAFE_INT


def text(
    *, required: bool = False, choices: set[str] | None = None, max_length: int = 256
) -> FieldSpec:
    """A string field (at most ``max_length`` characters, optionally one of ``choices``)."""
    return FieldSpec(
        FieldKind.STR,
        required=required,
        choices=frozenset(choices) if choices is not None else None,
        max_length=max_length,
    )


def integer(
    *, required: bool = False, minimum: int = -MAX_SAFE_INT, maximum: int = MAX_SAFE_INT
) -> FieldSpec:
    """An integer field within ``[minimum, maximum]`` (booleans are not integers here)."""
    return FieldSpec(FieldKind.INT, required=required, minimum=minimum, maximum=maximum)


def flag(*, required: bool = False) -> FieldSpec:
    """A boolean field."""
    return FieldSpec(FieldKind.BOOL, required=required)


def text_list(*, required: bool = False, max_items: int = 64, max_length: int = 256) -> FieldSpec:
    """A list of strings (at most ``max_items`` items of ``max_length`` characters)."""
    return FieldSpec(
        FieldKind.STR_LIST, required=required, max_items=max_items, max_length=max_length
    )


@dataclass(frozen=True, slots=True)
class EventSchema:
    """The declared shape of one event type."""

    name: str
    description: str
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)
    internal: bool = False  # written by the audit package itself; emit() refuses it

    def validate(self, values: Mapping[str, object]) -> dict[str, AuditValue]:
        """Checked, normalized copy of ``values``; raises AuditSchemaError naming the field."""
        out: dict[str, AuditValue] = {}
        for key, value in values.items():
            spec = self.fields.get(key)
            if spec is None:
                raise AuditSchemaError(f"audit: event '{self.name}' has no field {_name(key)}")
            out[key] = _value(self.name, key, spec, value)
        for key, spec in self.fields.items():
            if spec.required and out.get(key) is None:
                raise AuditSchemaError(f"audit: event '{self.name}' requires field '{key}'")
        return out


def _name(key: object) -> str:
    """A field name fit for an error message: quoted when well-formed, else a placeholder."""
    if isinstance(key, str) and FIELD_NAME.match(key):
        return f"'{key}'"
    return "(invalid field name)"


def _value(event: str, key: str, spec: FieldSpec, value: object) -> AuditValue:
    """One value checked against its spec and copied to a plain builtin type."""
    where = f"audit: event '{event}' field '{key}'"
    if value is None:
        return None
    match spec.kind:
        case FieldKind.BOOL:
            if isinstance(value, bool):
                return value
        case FieldKind.INT:
            if isinstance(value, int) and not isinstance(value, bool):
                if not spec.minimum <= value <= spec.maximum:
                    raise AuditSchemaError(f"{where} is out of range")
                return int(value)
        case FieldKind.STR:
            if isinstance(value, str):
                return _text(where, spec, value)
        case FieldKind.STR_LIST:
            if isinstance(value, (list, tuple)):
                return _items(where, spec, value)
    raise AuditSchemaError(f"{where} must be {spec.kind.value}")


def _items(where: str, spec: FieldSpec, value: list[object] | tuple[object, ...]) -> list[str]:
    """A list of strings checked item by item and copied."""
    if len(value) > spec.max_items:
        raise AuditSchemaError(f"{where} has too many items")
    items = []
    for item in value:
        if not isinstance(item, str):
            raise AuditSchemaError(f"{where} must be list[str]")
        items.append(_text(where, spec, item))
    return items


def _text(where: str, spec: FieldSpec, value: str) -> str:
    """A string checked for length, encodability and choices; returned as a plain str."""
    plain = str.__str__(value)  # a str subclass cannot smuggle a different __str__ in
    if len(plain) > spec.max_length:
        raise AuditSchemaError(f"{where} is too long")
    try:
        plain.encode("utf-8")
    except UnicodeEncodeError as e:
        raise AuditSchemaError(f"{where} is not valid unicode") from e
    if spec.choices is not None and plain not in spec.choices:
        raise AuditSchemaError(f"{where} is not an allowed value")
    return plain
