"""``tokengate policy``: lint config files and regenerate their schemas."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click
import yaml

from policy.errors import PolicyError

if TYPE_CHECKING:
    from proxy.settings import Settings


def _is_gateway_file(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "upstreams" in data


def _lint_egress(settings: Settings) -> int | None:
    """Compile the egress route files gateway.yaml names, as ``egress serve`` does.

    None when the file has no ``egress:`` section (the relay is not used);
    else the number of egress routes. PolicyError lists every problem.
    """
    from proxy.egress.compile import load_egress

    gateway = settings.gateway
    if "egress" not in gateway.model_fields_set:
        return None
    return len(load_egress(gateway.egress, settings.config_path.parent, settings.classes))


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
    """Validate gateway.yaml files (with their policies and egress routes) and policy files."""
    from proxy.settings import load_settings

    gateways = [p for p in paths if _is_gateway_file(p)]
    policies = [p for p in paths if p not in gateways]
    failed = False
    for gw in gateways:
        try:
            settings = load_settings(gw)
            egress = _lint_egress(settings)
            extra = f", {egress} egress routes" if egress is not None else ""
            click.echo(
                f"{gw}: ok ({len(settings.files) - 1} policy files, "
                f"{len(settings.routes)} routes{extra})"
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


@policy.command("test")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("config/gateway.yaml"),
    show_default=True,
    help="gateway.yaml whose policies are tested",
)
@click.option(
    "--request",
    "request_file",
    required=True,
    type=click.File("rb"),
    help="sample request in HTTP/1.1 form (request line, headers, blank line, body)",
)
@click.option(
    "--response",
    "response_file",
    type=click.File("rb"),
    help="sample response in HTTP/1.1 form, values in the clear",
)
@click.option("--sub", help="the caller's subject (default: anonymous)")
@click.option("--role", "roles", multiple=True, help="a role of the caller (repeatable)")
@click.option("--tenant", help="the caller's tenant")
@click.option("--mfa", is_flag=True, help="the caller passed a second factor just now")
@click.option("--owner", help="owner of the sample response's records (default: --sub)")
def test_policy(
    config_path: Path,
    request_file: BinaryIO,
    response_file: BinaryIO | None,
    sub: str | None,
    roles: tuple[str, ...],
    tenant: str | None,
    mfa: bool,
    owner: str | None,
) -> None:
    """Show what the policies do to a sample request and response (a dry run: no vault writes)."""
    import asyncio
    import json
    import time

    from plugins.base import Subject
    from proxy.policypreview import parse_sample, preview
    from proxy.settings import load_settings

    try:
        settings = load_settings(config_path)
        request = parse_sample(request_file.read())
        response = parse_sample(response_file.read()) if response_file else None
    except (PolicyError, ValueError) as e:
        problems = e.problems if isinstance(e, PolicyError) else [str(e)]
        for problem in problems:
            click.echo(problem, err=True)
        sys.exit(2)
    now = int(time.time())
    subject = Subject(
        sub=sub,
        roles=frozenset(roles),
        tenant=tenant,
        amr=("pwd", "otp", "mfa") if mfa else ("pwd",) if sub else (),
        auth_time=now if sub else None,
    )
    result = asyncio.run(preview(settings, request, response, subject=subject, owner=owner or sub))
    click.echo(json.dumps(result.as_dict(), indent=2))
    sys.exit(1 if result.refused else 0)


def register(cli: click.Group) -> None:
    """Attach ``policy``."""
    cli.add_command(policy)
