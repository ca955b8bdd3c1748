"""``tokengate migrate``: tokenize plaintext already stored in a database column, in place.

Opens what the gateway opens (gateway.yaml's keyring, vault store and audit
log, the field class from the policy files), then runs
:class:`~proxy.migrate.runner.Migration` over the table with a progress bar
on stderr and prints the final counts. Safe to interrupt and run again: it
continues where it stopped (see :mod:`proxy.migrate.runner` for the rules).

``--where`` is trusted SQL pasted into the WHERE clause: only an operator
writes it, never pass it text from elsewhere. Table and column names must be
plain identifiers and are quoted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from audit.errors import AuditError
from kms_client.keysetup import audited_keys
from policy.errors import PolicyError
from proxy.cli.gatewayfile import GatewayFile, field_classes, load_gateway_file
from proxy.cli.keys_cmd import ACTOR_OPTION, CONFIG_OPTION, collect_shares
from proxy.migrate.errors import MigrateError
from proxy.migrate.opening import open_source
from proxy.migrate.runner import Counts, Migration, Plan
from proxy.migrate.source import Target
from tokengate.errors import GatewayError
from vault.api import ClassSpec
from vault.engine import Vault
from vault.opening import open_store


def register(cli: click.Group) -> None:
    """Add the ``migrate`` command to the root command."""
    cli.add_command(migrate)


@click.command()
@click.option("--dsn", required=True, help="sqlite:///path.db or postgresql://... (the app's DB)")
@click.option("--table", required=True, help="table (or schema.table) holding the plaintext")
@click.option("--column", required=True, help="column to tokenize in place")
@click.option("--class", "class_name", required=True, help="field class (policy files)")
@click.option("--where", help="TRUSTED SQL condition limiting the rows (operator input only)")
@click.option("--owner-column", help="column whose value becomes each record's owner")
@click.option("--tenant", default="", help="tenant of the records")
@click.option("--key-column", help="unique key to page by (default: rowid / primary key)")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="rows per batch (one vault call and one transaction each)",
)
@click.option("--dry-run", is_flag=True, help="count what would change; write nothing")
@click.option("--json", "as_json", is_flag=True, help="print the counts as JSON")
@CONFIG_OPTION
@ACTOR_OPTION
def migrate(
    dsn: str,
    table: str,
    column: str,
    class_name: str,
    where: str | None,
    owner_column: str | None,
    tenant: str,
    key_column: str | None,
    batch_size: int,
    dry_run: bool,
    as_json: bool,
    config_path: Path,
    actor: str,
) -> None:
    """Tokenize plaintext in TABLE.COLUMN in place (batched, resumable, idempotent)."""
    try:
        gf = load_gateway_file(config_path)
        spec = _spec(gf, class_name)
        target = Target(table, column, where, owner_column, key_column)
    except PolicyError as e:
        raise click.ClickException("invalid configuration:\n  " + "\n  ".join(e.problems)) from e
    except MigrateError as e:
        raise click.UsageError(str(e)) from e
    plan = Plan(spec, tenant, batch_size, dry_run, actor)
    try:
        counts = asyncio.run(_run(gf, dsn, target, plan))
    except (GatewayError, AuditError) as e:
        raise click.ClickException(str(e)) from e
    _report(counts, dry_run, as_json)


def _spec(gf: GatewayFile, name: str) -> ClassSpec:
    classes = field_classes(gf)
    if name not in classes:
        known = ", ".join(sorted(classes)) or "none"
        raise click.UsageError(f"no policy file declares class '{name}' (declared: {known})")
    return classes[name].spec


async def _run(gf: GatewayFile, dsn: str, target: Target, plan: Plan) -> Counts:
    """Open keyring, audit log, vault and source; run; close them all."""
    async with audited_keys(
        keys=gf.gateway.keys,
        audit=gf.gateway.audit,
        data_dir=gf.data_dir,
        production=gf.production,
        background=False,
        actor=plan.actor,
        shares=lambda: collect_shares(()),
    ) as (audit_log, manager):
        store = await open_store(gf.vault, data_dir=gf.data_dir)
        try:
            source = await open_source(dsn, target)
            try:
                vault = Vault(store, manager, untagged_index_version=gf.untagged_index_version)
                total = await source.count()
                label = f"{target.table}.{target.column}"
                with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
                    migration = Migration(source, target, vault, audit_log, plan)
                    return await migration.run(lambda batch: bar.update(batch.scanned))
            finally:
                await source.close()
        finally:
            await store.close()


def _report(counts: Counts, dry_run: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, **asdict(counts)}))
        return
    verb = "would tokenize" if dry_run else "tokenized"
    click.echo(
        f"scanned {counts.scanned}: {verb} {counts.tokenized}, already tokens "
        f"{counts.already_tokens}, null/empty {counts.empty}, not text {counts.not_text}, "
        f"format mismatch {counts.mismatched}, changed meanwhile {counts.conflicts}"
    )
    if counts.conflicts:
        click.echo("rows changed by the application meanwhile were left alone: run again")
