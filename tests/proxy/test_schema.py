"""The committed JSON Schemas and config reference match the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.configdoc import render_reference
from proxy.schema import SCHEMAS, render_schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_current(name: str) -> None:
    committed = (ROOT / "config" / "schema" / name).read_text()
    assert committed == render_schema(name), "run: tokengate policy schema"


def test_committed_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render_reference()


def test_schema_rejects_unknown_keys() -> None:
    schema = json.loads(render_schema("gateway.schema.json"))
    assert schema["additionalProperties"] is False
    assert "upstreams" in schema["required"]
