"""Reading YAML config files with precise error locations.

Rules:
- Safe loading only; a duplicate mapping key is an error (the last one would
  silently win otherwise).
- ``${NAME}`` in a string is replaced by the environment variable NAME after
  parsing, so a secret can never inject YAML structure; ``$${`` escapes a
  literal ``${``. A missing variable is an error naming the YAML path, never a
  silent empty string.
- Validation errors are reported as ``FILE: YAML.PATH: problem``; the offending
  value is never echoed (it may be a secret).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from policy.errors import PolicyError

_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def format_loc(loc: Iterable[int | str]) -> str:
    """``("routes", 2, "match", "path")`` -> ``routes[2].match.path``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _interpolate(value: object, loc: tuple[int | str, ...], env: Mapping[str, str]) -> object:
    if isinstance(value, str):
        return _substitute(value, loc, env)
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), env) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, str(k)), env) for k, v in value.items()}
    return value


def _substitute(text: str, loc: tuple[int | str, ...], env: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name = m.group(1)
        if name not in env:
            raise _MissingEnvError(loc, name)
        return env[name]

    return _ENV_REF.sub(repl, text)


class _MissingEnvError(Exception):
    def __init__(self, loc: tuple[int | str, ...], name: str) -> None:
        self.loc = loc
        self.name = name


def read_yaml(path: Path, *, label: str, env: Mapping[str, str] | None = None) -> object:
    """Parse ``path`` and interpolate ``${ENV}``; ``label`` is the name used in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError([f"{label}: cannot read file ({e.strerror or type(e).__name__})"]) from e
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "unknown position"
        raise PolicyError([f"{label}: {where}: {e.problem or 'invalid YAML'}"]) from e
    except yaml.YAMLError as e:
        raise PolicyError([f"{label}: invalid YAML"]) from e
    try:
        return _interpolate(
            data if data is not None else {}, (), os.environ if env is None else env
        )
    except _MissingEnvError as e:
        raise PolicyError(
            [f"{label}: {format_loc(e.loc)}: environment variable '{e.name}' is not set"]
        ) from e


def validation_problems(label: str, error: ValidationError) -> list[str]:
    """One ``FILE: PATH: problem`` line per pydantic error, values never echoed."""
    problems = []
    for err in error.errors(include_input=False, include_url=False):
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{label}: {format_loc(err['loc'])}: {msg}")
    return problems


def load_model[M: BaseModel](
    model: type[M], path: Path, *, label: str, env: Mapping[str, str] | None = None
) -> M:
    """Read ``path`` and validate it as ``model``; raise PolicyError naming every problem."""
    data = read_yaml(path, label=label, env=env)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise PolicyError(validation_problems(label, e)) from e
