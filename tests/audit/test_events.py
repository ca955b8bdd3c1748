"""The central event table: declared events, lookups, and declaration rules."""

from __future__ import annotations

import pytest

from audit import declared_events
from audit.errors import AuditSchemaError
from audit.events import declare, schema_for
from audit.schema import EVENT_NAME, FIELD_NAME, text


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (
            "gateway.start",
            {"version": "0.1.0", "mode": "production", "workers": 4, "config_digest": "ab"},
        ),
        ("gateway.stop", {"reason": "signal"}),
        ("policy.reload", {"result": "ok", "config_digest": "ab", "files": 3, "reason": "sighup"}),
        (
            "policy.reload",
            {"result": "rejected", "config_digest": None, "files": 0, "reason": "bad"},
        ),
    ],
)
def test_the_gateway_events_accept_their_fields(event: str, fields: dict[str, object]) -> None:
    assert schema_for(event).validate(fields) == fields


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        ("gateway.start", {"mode": "production"}),  # version required
        ("gateway.stop", {"reason": "x", "password": "hunter2"}),
        ("policy.reload", {"result": "maybe"}),
        ("policy.reload", {"result": "ok", "files": ["a.yaml"]}),
    ],
)
def test_the_gateway_events_refuse_anything_else(event: str, fields: dict[str, object]) -> None:
    with pytest.raises(AuditSchemaError):
        schema_for(event).validate(fields)


def test_unknown_events_are_refused_without_echoing_odd_names() -> None:
    with pytest.raises(AuditSchemaError, match=r"^audit: unknown event 'nope\.nothing'$"):
        schema_for("nope.nothing")
    with pytest.raises(AuditSchemaError, match=r"^audit: unknown event \(invalid name\)$"):
        schema_for("ssn 078-05-1120")


def test_internal_events_are_refused_to_callers_but_known_internally() -> None:
    with pytest.raises(AuditSchemaError):
        schema_for("audit.checkpoint")
    assert schema_for("audit.checkpoint", internal=True).internal


def test_declared_events_is_read_only_and_well_formed() -> None:
    events = declared_events()
    with pytest.raises(TypeError):
        events["x.y"] = events["gateway.stop"]  # type: ignore[index]
    for name, schema in events.items():
        assert EVENT_NAME.match(name)
        assert schema.name == name
        assert schema.description
        assert all(FIELD_NAME.match(field) for field in schema.fields)


@pytest.mark.parametrize(
    ("name", "fields", "message"),
    [
        ("gateway.stop", {}, "declared twice"),
        ("NoDot", {}, "is not <area>.<action>"),
        ("test.bad_field", {"BadField": text()}, "is not snake_case"),
    ],
)
def test_bad_declarations_stop_the_import(
    name: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(AuditSchemaError, match=message):
        declare(name, "x", **fields)  # type: ignore[arg-type]
    assert name not in declared_events() or name == "gateway.stop"
