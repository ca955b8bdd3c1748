"""The build context: everything `pip install .` needs, no state, keys or tooling."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.deploy.support import DOCKERIGNORE, ROOT


def _pattern(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore syntax: ``*`` within a segment, ``**`` across segments."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        rules.append((negated, _pattern(line.lstrip("!").strip("/"))))
    return rules


def excluded(path: str) -> bool:
    """Whether Docker leaves ``path`` (or a directory above it) out of the context."""
    rules = _rules()
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        verdict = None
        for negated, rule in rules:
            if rule.fullmatch(prefix):
                verdict = not negated
        if verdict:
            return True
    return False


def _package_dirs() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = project["tool"]["setuptools"]
    mapping = setuptools.get("package-dir", {})
    dirs = []
    for package in setuptools["packages"]:
        top = package.split(".")[0]
        base = mapping.get(top, top)
        rest = package.split(".")[1:]
        dirs.append("/".join([base, *rest]))
    return dirs


def test_every_installed_package_is_in_the_context() -> None:
    dirs = _package_dirs()
    assert "examples/demo_backend" in dirs
    for directory in dirs:
        sources = [
            p.relative_to(ROOT).as_posix()
            for p in (ROOT / directory).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
        assert sources, directory
        for source in sources:
            assert not excluded(source), source


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "config/gateway.yaml",
        "config/policies/demo.yaml",
        "examples/demo_backend/static/app.js",
    ],
)
def test_build_inputs_are_kept(path: str) -> None:
    assert not excluded(path)


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/conftest.py",
        "bench/run.py",
        "deploy/kubernetes/secret.yaml",
        "proxy/__pycache__/app.cpython-312.pyc",
        "tokengate.egg-info/PKG-INFO",
        "data/vault.sqlite3",
        "config/root.key",
        "config/keys/audit-checkpoint.pem",
        "examples/demo_backend/demo.sqlite3",
        ".env",
        "config/.env.local",
        "Dockerfile",
    ],
)
def test_state_keys_and_tooling_are_dropped(path: str) -> None:
    assert excluded(path)
