"""``tokengate egress serve|ca|client create``: the egress relay and what its users need.

``serve`` runs the relay (:mod:`proxy.egress.server`; needs the
``tokengate[egress]`` extra, imported only when it runs). ``ca`` prints the
relay's CA certificate (PEM, stdout) for the backend's trust store, making
the CA first if the keyring store holds none. ``client create`` prints a new
client secret once (stdout) and the line to paste under ``egress.clients``
(stderr), which holds only its SHA-256.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from audit.errors import AuditError
from policy.errors import PolicyError
from proxy.cli.gatewayfile import load_gateway_file
from proxy.cli.keys_cmd import ACTOR_OPTION, CONFIG_OPTION, collect_shares
from proxy.cli.startup import start_errors
from proxy.egress.config import CLIENT_NAME
from tokengate.errors import GatewayError


def register(cli: click.Group) -> None:
    """Add the ``egress`` group to the root command."""
    cli.add_command(egress)


@click.group()
def egress() -> None:
    """The egress relay: detokenize the backend's calls to allow-listed third parties."""


@egress.command("serve")
@CONFIG_OPTION
def serve(config_path: Path) -> None:
    """Run the relay (a forward proxy: the backend's HTTPS_PROXY) until SIGTERM."""
    try:
        from proxy.egress.server import serve_main
    except ImportError as e:
        raise click.ClickException(
            "egress: mitmproxy is missing; install the extra: pip install 'tokengate[egress]'"
        ) from e
    with start_errors():
        serve_main(config_path)


@egress.command("ca")
@CONFIG_OPTION
@ACTOR_OPTION
def ca(config_path: Path, actor: str) -> None:
    """Print the relay's CA certificate (PEM), making the CA first if there is none."""
    try:
        pem = asyncio.run(_ca_pem(config_path, actor))
    except PolicyError as e:
        raise click.ClickException("invalid configuration:\n  " + "\n  ".join(e.problems)) from e
    except (GatewayError, AuditError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(pem.decode("ascii"), nl=False)


async def _ca_pem(config_path: Path, actor: str) -> bytes:
    from kms_client.keysetup import audited_keys
    from kms_client.secrets import WrappedSecrets
    from proxy.egress.ca import CA_PURPOSE, load_or_create_ca

    gf = await asyncio.to_thread(load_gateway_file, config_path)
    async with audited_keys(
        keys=gf.gateway.keys,
        audit=gf.gateway.audit,
        data_dir=gf.data_dir,
        production=gf.production,
        background=False,
        actor=actor,
        shares=lambda: collect_shares(()),
    ) as (audit_log, manager):
        relay_ca = await load_or_create_ca(
            WrappedSecrets(manager, purpose=CA_PURPOSE),
            common_name=gf.gateway.egress.ca_common_name,
            audit=audit_log,
            actor=actor,
        )
        return relay_ca.cert_pem


@egress.group()
def client() -> None:
    """Credentials of the relay's clients."""


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import re

    if not re.fullmatch(CLIENT_NAME, value):
        raise click.BadParameter("use 1-64 of a-z 0-9 _ . - (starting with a letter or digit)")
    return value


@client.command("create")
@click.option("--name", required=True, callback=_name, help="client name (audit log name)")
@click.option("--role", "roles", multiple=True, help="a role detokenize allow rules can require")
def create(name: str, roles: tuple[str, ...]) -> None:
    """Print a new client secret once (stdout) and its config line (stderr)."""
    from proxy.egress.clients import new_client_secret, secret_digest

    secret = new_client_secret()
    click.echo(secret)
    click.echo(
        "# store the secret above now: it is not shown again. The backend sends it as\n"
        f"# HTTPS_PROXY=http://{name}:<secret>@HOST:PORT. Add under egress.clients:",
        err=True,
    )
    role_list = ", ".join(roles)
    click.echo(
        f"- {{name: {name}, roles: [{role_list}], sha256: {secret_digest(secret)}}}", err=True
    )
