"""Field specs and EventSchema.validate: every refusal names event and field, never the value."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

import pytest

from audit.errors import AuditSchemaError
from audit.schema import EventSchema, flag, integer, text, text_list

SECRET = "4111111111111111"

SCHEMA = EventSchema(
    "demo.act",
    "a test event",
    MappingProxyType(
        {
            "who": text(required=True, max_length=16),
            "outcome": text(choices={"ok", "denied"}),
            "count": integer(minimum=0, maximum=10),
            "fresh": flag(),
            "tags": text_list(max_items=2, max_length=8),
        }
    ),
)


class Color(StrEnum):
    RED = "red"


def test_valid_fields_are_copied_to_plain_types() -> None:
    tags = ["a", "b"]
    out = SCHEMA.validate(
        {"who": Color.RED, "outcome": "ok", "count": 3, "fresh": True, "tags": tags}
    )
    assert out == {"who": "red", "outcome": "ok", "count": 3, "fresh": True, "tags": ["a", "b"]}
    assert type(out["who"]) is str
    assert out["tags"] is not tags  # a later mutation by the caller cannot change the entry


def test_optional_fields_may_be_absent_or_none() -> None:
    assert SCHEMA.validate({"who": "x", "count": None}) == {"who": "x", "count": None}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "audit: event 'demo.act' requires field 'who'"),
        ({"who": None}, "audit: event 'demo.act' requires field 'who'"),
        ({"who": "x", "body": SECRET}, "audit: event 'demo.act' has no field 'body'"),
        (
            {"who": "x", "Bad Key": SECRET},
            "audit: event 'demo.act' has no field (invalid field name)",
        ),
        ({"who": 5}, "audit: event 'demo.act' field 'who' must be str"),
        ({"who": SECRET * 2}, "audit: event 'demo.act' field 'who' is too long"),
        ({"who": "\ud800"}, "audit: event 'demo.act' field 'who' is not valid unicode"),
        (
            {"who": "x", "outcome": SECRET},
            "audit: event 'demo.act' field 'outcome' is not an allowed value",
        ),
        ({"who": "x", "count": True}, "audit: event 'demo.act' field 'count' must be int"),
        ({"who": "x", "count": 1.0}, "audit: event 'demo.act' field 'count' must be int"),
        ({"who": "x", "count": 11}, "audit: event 'demo.act' field 'count' is out of range"),
        ({"who": "x", "count": -1}, "audit: event 'demo.act' field 'count' is out of range"),
        ({"who": "x", "fresh": 1}, "audit: event 'demo.act' field 'fresh' must be bool"),
        ({"who": "x", "tags": "ab"}, "audit: event 'demo.act' field 'tags' must be list[str]"),
        ({"who": "x", "tags": ["a", 1]}, "audit: event 'demo.act' field 'tags' must be list[str]"),
        (
            {"who": "x", "tags": ["a", "b", "c"]},
            "audit: event 'demo.act' field 'tags' has too many items",
        ),
        ({"who": "x", "tags": [SECRET]}, "audit: event 'demo.act' field 'tags' is too long"),
        (
            {"who": "x", "fresh": {"nested": SECRET}},
            "audit: event 'demo.act' field 'fresh' must be bool",
        ),
    ],
)
def test_refusals_name_event_and_field_but_never_the_value(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(AuditSchemaError) as caught:
        SCHEMA.validate(fields)
    assert str(caught.value) == message
    assert SECRET not in str(caught.value)
    assert caught.value.status == 500
    assert caught.value.code == "audit_schema_violation"
