"""A minimal in-tree PEP 517 backend: builds a pure-Python wheel from ``[project]``.

Enough for this example to install offline (``pip install --no-build-isolation``)
without setuptools: one package directory named after the project, metadata
and entry points from ``pyproject.toml``, a RECORD with SHA-256 digests.
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

_ROOT = Path.cwd()


def _project() -> dict[str, object]:
    with (_ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def _dist_name(project: dict[str, object]) -> str:
    return str(project["name"]).replace("-", "_")


def _metadata(project: dict[str, object]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3')}",
    ]
    return "\n".join(lines) + "\n"


def _entry_points(project: dict[str, object]) -> str:
    groups = project.get("entry-points", {})
    if not isinstance(groups, dict):
        raise TypeError("[project.entry-points] must be a table")
    out = []
    for group, entries in groups.items():
        out.append(f"[{group}]")
        out.extend(f"{name} = {target}" for name, target in entries.items())
        out.append("")
    return "\n".join(out)


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, object] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``wheel_directory``."""
    project = _project()
    name, version = _dist_name(project), str(project["version"])
    info = f"{name}-{version}.dist-info"
    files: dict[str, bytes] = {}
    package = _ROOT / name
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            files[path.relative_to(_ROOT).as_posix()] = path.read_bytes()
    files[f"{info}/METADATA"] = _metadata(project).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tg_example_build\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = _entry_points(project).encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in files.items():
            zf.writestr(member, data)
    return wheel


def get_requires_for_build_wheel(config_settings: dict[str, object] | None = None) -> list[str]:
    """Nothing to install before building."""
    return []
