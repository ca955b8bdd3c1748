"""``tokengate admin key create``: a new admin API key, shown once.

The key goes to stdout alone (so ``KEY=$(tokengate admin key create ...)``
captures just the key); the line to paste under ``admin.api.keys`` in
gateway.yaml, which holds only the key's SHA-256, goes to stderr. Nothing is
written anywhere: the gateway accepts the key once the line is in its config.
"""

from __future__ import annotations

import re

import click

from proxy.adminapi.keys import Role, key_digest, new_api_key

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # as AdminKeyConfig.name


def register(cli: click.Group) -> None:
    """Add the ``admin`` group to the root command."""
    cli.add_command(admin)


@click.group()
def admin() -> None:
    """Admin API keys."""


@admin.group()
def key() -> None:
    """Create admin API keys."""


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise click.BadParameter("use 1-64 of a-z 0-9 _ . - (starting with a letter or digit)")
    return value


@key.command("create")
@click.option("--name", required=True, callback=_name, help="holder of the key (audit log name)")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="auditor: read; operator: + revoke a session or user; admin: + revoke all",
)
def create(name: str, role: str) -> None:
    """Print a new key once (stdout) and its config line (stderr)."""
    api_key = new_api_key()
    click.echo(api_key)
    click.echo(
        "# store the key above now: it is not shown again. Add under admin.api.keys:",
        err=True,
    )
    click.echo(f"- {{name: {name}, role: {role}, sha256: {key_digest(api_key)}}}", err=True)
