"""JSON Schemas of gateway.yaml and policy files, for editors and for the docs.

Generated from the same pydantic models that validate at start-up, so the
schema, the reference doc and the validator cannot disagree. ``tokengate
policy schema`` writes them; a test fails when the committed copies are stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from policy.model import PolicyFile
from proxy.config import GatewayConfig
from proxy.egress.model import EgressPolicyFile

SCHEMAS: dict[str, type[BaseModel]] = {
    "gateway.schema.json": GatewayConfig,
    "policy.schema.json": PolicyFile,
    "egress.schema.json": EgressPolicyFile,
}


def render_schema(name: str) -> str:
    """The schema file ``name`` as stable, pretty JSON text."""
    model = SCHEMAS[name]
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://tokengate.dev/schema/{name}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = directory / name
        path.write_text(render_schema(name))
        written.append(path)
    return written
