"""``tokengate serve``: run the gateway."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from proxy.cli.startup import start_errors


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

    with start_errors():
        code = serve_main(config_path, workers)
    sys.exit(code)


def register(cli: click.Group) -> None:
    """Attach ``serve``."""
    cli.add_command(serve)
