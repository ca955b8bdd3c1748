"""The wheel ships every package: a non-editable install (the Docker image) must import them all."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = (
    "tokengate",
    "proxy",
    "policy",
    "plugins",
    "kms_client",
    "vault",
    "tee",
    "kms",
    "audit",
)


def _declared() -> set[str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(doc["tool"]["setuptools"]["packages"])


def _on_disk() -> set[str]:
    found = set()
    for top in TOP_LEVEL:
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    for example in ("demo_backend", "tee_jobs"):
        for init in (ROOT / "examples" / example).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / "examples")
            found.add(".".join(rel.parts))
    return found


def test_every_package_is_declared() -> None:
    missing = sorted(_on_disk() - _declared())
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_declared_package_exists() -> None:
    stale = sorted(_declared() - _on_disk() - {"config"})
    assert not stale, f"declared but missing on disk: {stale}"
