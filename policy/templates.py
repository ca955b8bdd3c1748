"""Path patterns of routes: exact paths, templates, prefixes and regexes.

Rules:
- A template is a path whose whole segments may be ``{name}``; a parameter
  matches exactly one non-empty segment. ``/api/users/{id}`` matches
  ``/api/users/42`` but not ``/api/users/`` or ``/api/users/4/2``.
- A template with no parameter is an exact path; a trailing slash counts.
- A prefix matches at segment boundaries: ``/api`` matches ``/api``, ``/api/``
  and ``/api/x`` but never ``/apis``. ``/`` matches every path.
- A regex is Python ``re`` syntax, matched with ``fullmatch`` against the path.
All paths are the decoded path; the proxy refuses ambiguous raw paths (dot
segments, encoded slashes) before matching, so decoded and raw paths agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: a literal, or a parameter capturing one segment."""

    literal: str | None
    param: str | None = None


def split_path(path: str) -> list[str]:
    """``/a/b/`` -> ``["a", "b", ""]``; ``/`` -> ``[]``."""
    if path == "/":
        return []
    return path[1:].split("/")


def _check_braces(template: str) -> None:
    depth = 0
    for ch in template:
        if ch == "{":
            depth += 1
            if depth > 1:
                raise ValueError("nested '{' in path template")
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced '}'")
    if depth:
        raise ValueError("unbalanced '{'")


def parse_template(template: str) -> tuple[Segment, ...]:
    """Split a template into segments; raise ValueError with a short reason."""
    if not template.startswith("/"):
        raise ValueError("a path must start with '/'")
    _check_braces(template)
    segments: list[Segment] = []
    names: set[str] = set()
    for raw in split_path(template):
        if "{" not in raw:
            segments.append(Segment(literal=raw))
            continue
        if not (raw.startswith("{") and raw.endswith("}")):
            raise ValueError("a parameter must be a whole path segment, like /users/{id}")
        name = raw[1:-1]
        if not _PARAM_NAME.match(name):
            raise ValueError(f"invalid parameter name {name!r}")
        if name in names:
            raise ValueError(f"parameter {name!r} appears twice")
        names.add(name)
        segments.append(Segment(literal=None, param=name))
    return tuple(segments)


def parse_prefix(prefix: str) -> tuple[str, ...]:
    """Literal segments of a prefix; a trailing slash is ignored (segment semantics)."""
    if not prefix.startswith("/"):
        raise ValueError("a prefix must start with '/'")
    if "{" in prefix or "}" in prefix:
        raise ValueError("a prefix cannot hold parameters; use path with a template")
    return tuple(split_path(prefix.rstrip("/") or "/"))


def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile a route regex; raise ValueError naming the regex problem."""
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"invalid regex: {e.msg}") from e
