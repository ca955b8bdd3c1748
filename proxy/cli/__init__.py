"""The ``tokengate`` command line.

Every subcommand lives in its own module of this package and is registered
here explicitly, so the whole CLI surface can be read in one place.
"""

from __future__ import annotations

import click

from tokengate import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tokengate")
def cli() -> None:
    """tokengate: sessions, request proofs and tokenization in front of an existing app."""


def _register() -> None:
    """Attach the subcommands; imported lazily so ``tokengate --help`` stays fast."""
    # Explicit list: a new command is added here, never discovered.
    from proxy.cli import (
        admin_cmd,
        attest_cmd,
        audit_cmd,
        demo_cmd,
        egress_cmd,
        keys_cmd,
        kms_cmd,
        migrate_cmd,
        policy_cmd,
        serve_cmd,
        sessions_cmd,
        tee_cmd,
        token_cmd,
    )

    for module in (
        serve_cmd,
        demo_cmd,
        policy_cmd,
        keys_cmd,
        kms_cmd,
        sessions_cmd,
        admin_cmd,
        audit_cmd,
        token_cmd,
        migrate_cmd,
        attest_cmd,
        tee_cmd,
        egress_cmd,
    ):
        module.register(cli)


def main() -> None:
    """Console-script entry point."""
    _register()
    cli(prog_name="tokengate")
