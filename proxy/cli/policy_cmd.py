"""``tokengate policy``: lint config files and regenerate their schemas."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from policy.errors import PolicyError


def _is_gateway_file(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "upstreams" in data


def _lint_policies(paths: list[Path]) -> int:
    """Validate policy files on their own: schema, duplicates, ambiguity."""
    from policy.compile import compile_fields
    from policy.model import PolicyFile, Route
    from policy.routing import Router
    from policy.yamlio import load_model

    problems: list[str] = []
    routes: list[Route] = []
    files: list[tuple[str, PolicyFile]] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            policy = load_model(PolicyFile, path, label=str(path))
        except PolicyError as e:
            problems.extend(e.problems)
            continue
        files.append((str(path), policy))
        for i, route in enumerate(policy.routes):
            if route.name in seen:
                problems.append(
                    f"{path}: routes[{i}].name: route '{route.name}' "
                    f"is already declared in {seen[route.name]}"
                )
            seen[route.name] = str(path)
            routes.append(route)
    if not problems:
        try:
            Router.compile(routes)
        except ValueError as e:
            problems.append(f"policies: {e}")
    if not problems:
        try:
            compile_fields(files)  # classes, actions and their options, as start-up does
        except PolicyError as e:
            problems.extend(e.problems)
    if problems:
        raise PolicyError(problems)
    return len(routes)


@click.group("policy")
def policy() -> None:
    """Validate and describe configuration files."""


@policy.command("lint")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def lint(paths: tuple[Path, ...]) -> None:
    """Validate gateway.yaml files (with their policies) and policy files, as start-up does."""
    from proxy.settings import load_settings

    gateways = [p for p in paths if _is_gateway_file(p)]
    policies = [p for p in paths if p not in gateways]
    failed = False
    for gw in gateways:
        try:
            settings = load_settings(gw)
            click.echo(
                f"{gw}: ok ({len(settings.files) - 1} policy files, {len(settings.routes)} routes)"
            )
        except PolicyError as e:
            failed = True
            for problem in e.problems:
                click.echo(problem, err=True)
    if policies:
        try:
            count = _lint_policies(policies)
            click.echo(f"{len(policies)} policy files: ok ({count} routes)")
        except PolicyError as e:
            failed = True
            for problem in e.problems:
                click.echo(problem, err=True)
    sys.exit(1 if failed else 0)


@policy.command("schema")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("config/schema")
)
@click.option(
    "--docs", type=click.Path(dir_okay=False, path_type=Path), default=Path("docs/configuration.md")
)
def schema(out: Path, docs: Path) -> None:
    """Write the JSON Schemas and the generated configuration reference."""
    from proxy.configdoc import render_reference
    from proxy.schema import write_schemas

    for path in write_schemas(out):
        click.echo(f"wrote {path}")
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(render_reference())
    click.echo(f"wrote {docs}")


def register(cli: click.Group) -> None:
    """Attach ``policy``."""
    cli.add_command(policy)
