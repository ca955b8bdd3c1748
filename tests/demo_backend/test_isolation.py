"""The demo app stands for an existing app: it must import nothing of tokengate."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import demo_backend
import pytest

FORBIDDEN = frozenset(
    {
        "tokengate",
        "proxy",
        "policy",
        "plugins",
        "kms_client",
        "vault",
        "tee",
        "kms",
        "audit",
        "config",
    }
)
PACKAGE_DIR = Path(demo_backend.__file__).resolve().parent

# Imports every module of demo_backend in a clean interpreter, then reports which
# top-level packages ended up loaded.
_PROBE = """
import importlib, json, pkgutil, sys
import demo_backend
names = [m.name for m in pkgutil.walk_packages(demo_backend.__path__, "demo_backend.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def imported_top_levels(source: str) -> set[str]:
    """Every top-level package an import statement in ``source`` names (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_importing_every_module_loads_nothing_of_tokengate(tmp_path: Path) -> None:
    # Run from an empty dir so the repository root is not on sys.path by accident.
    result = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    report = json.loads(result.stdout)
    assert "demo_backend.app" in report["modules"]
    assert "demo_backend.__main__" in report["modules"]
    assert "aiohttp" in report["loaded"]  # the probe did import the app
    assert FORBIDDEN.isdisjoint(report["loaded"])


def test_no_source_file_imports_tokengate() -> None:
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(sources) >= 8
    for path in sources:
        found = imported_top_levels(path.read_text(encoding="utf-8")) & FORBIDDEN
        assert not found, f"{path.name} imports {sorted(found)}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import proxy", {"proxy"}),
        ("from tokengate.errors import GatewayError", {"tokengate"}),
        ("def f():\n    import kms_client.keyring as k\n", {"kms_client"}),
        ("import os, policy.model", {"os", "policy"}),
        ("from . import store", set()),
    ],
)
def test_import_scanner_sees_every_form(source: str, expected: set[str]) -> None:
    assert imported_top_levels(source) == expected
