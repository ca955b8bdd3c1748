"""``tokengate serve``: run the gateway."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit.errors import AuditError
from policy.errors import PolicyError
from tokengate.errors import GatewayError


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="gateway.yaml",
)
@click.option(
    "--workers", type=click.IntRange(min=0), default=None, help="worker processes (0 = one per CPU)"
)
def serve(config_path: Path, workers: int | None) -> None:
    """Serve the gateway with WORKERS processes sharing the port (SO_REUSEPORT)."""
    from proxy.supervisor import serve_main

    try:
        code = serve_main(config_path, workers)
    except PolicyError as e:
        click.echo("tokengate: invalid configuration:", err=True)
        for problem in e.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    except (GatewayError, AuditError) as e:
        click.echo(f"tokengate: cannot start: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"tokengate: cannot start: {e.strerror or type(e).__name__}", err=True)
        sys.exit(2)
    sys.exit(code)


def register(cli: click.Group) -> None:
    """Attach ``serve``."""
    cli.add_command(serve)
