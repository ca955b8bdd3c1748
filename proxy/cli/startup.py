"""How a server command (serve, egress serve, kms serve) reports what stops it from starting."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from audit.errors import AuditError
from policy.errors import PolicyError
from tokengate.errors import GatewayError


@contextmanager
def start_errors(cannot: str = "cannot start") -> Iterator[None]:
    """Exit 2 with a readable line (no traceback) for a bad config or a failed start.

    ``cannot`` begins the failure line, e.g. ``cannot start the KMS``.
    """
    try:
        yield
    except PolicyError as e:
        click.echo("tokengate: invalid configuration:", err=True)
        for problem in e.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    except (GatewayError, AuditError) as e:
        click.echo(f"tokengate: {cannot}: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"tokengate: {cannot}: {e.strerror or type(e).__name__}", err=True)
        sys.exit(2)
