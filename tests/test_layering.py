"""The dependency direction of DESIGN.md, checked on every import statement.

``proxy -> policy -> plugins -> {vault, kms_client, tee} -> audit``; ``audit``
and the shared ``tokengate`` base import nothing of the project; ``policy``
knows nothing of HTTP frameworks; the KMS service (``kms``) is a separate
process and imports nothing of the gateway (``proxy``); the demo app imports
nothing of tokengate. Lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = frozenset(
    ("proxy", "policy", "plugins", "vault", "kms_client", "tee", "kms", "audit", "tokengate")
)
# package -> the top-level modules it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "tokengate": PROJECT - {"tokengate"},
    "audit": PROJECT - {"audit"},
    "vault": frozenset(("proxy", "policy", "plugins", "kms")),
    "kms_client": frozenset(("proxy", "policy", "plugins", "kms")),
    "tee": frozenset(("proxy", "policy", "plugins", "kms")),
    "plugins": frozenset(("proxy", "policy", "kms")),
    "policy": frozenset(("proxy", "kms", "aiohttp")),
    "kms": frozenset(("proxy",)),
    "examples/demo_backend": PROJECT,
}


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def violations(package: str) -> list[str]:
    """``file:line imports module`` for each forbidden import under ``package``."""
    forbidden = FORBIDDEN[package]
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in imported(path):
            if module.split(".", 1)[0] in forbidden:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    assert (REPO / package).is_dir()
    assert violations(package) == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from proxy.app import build_app\n")
    assert list(imported(module)) == [(1, "os"), (4, "proxy.app")]
