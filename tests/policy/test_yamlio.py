"""Environment interpolation and error formatting of YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.errors import PolicyError
from policy.yamlio import format_loc, read_yaml


def test_env_interpolation_after_parsing(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("a: ${SECRET}\nb: [x, 'pre-${SECRET}']\nc: $${LITERAL}\n")
    data = read_yaml(path, label="g.yaml", env={"SECRET": "s3: {evil: yes}"})
    # The value stays a string: a secret can never inject YAML structure.
    assert data == {"a": "s3: {evil: yes}", "b": ["x", "pre-s3: {evil: yes}"], "c": "${LITERAL}"}


def test_missing_env_names_path_not_value(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("upstreams:\n  demo: {url: '${NOPE}'}\n")
    with pytest.raises(PolicyError) as info:
        read_yaml(path, label="gateway.yaml", env={})
    assert info.value.problems == [
        "gateway.yaml: upstreams.demo.url: environment variable 'NOPE' is not set"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.yaml: cannot read file"):
        read_yaml(tmp_path / "missing.yaml", label="missing.yaml")


@pytest.mark.parametrize(
    ("loc", "text"),
    [(("routes", 2, "match", "path"), "routes[2].match.path"), ((), "(top level)"), ((0,), "[0]")],
)
def test_format_loc(loc: tuple[int | str, ...], text: str) -> None:
    assert format_loc(loc) == text
