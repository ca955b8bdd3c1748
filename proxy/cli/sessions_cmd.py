"""``tokengate sessions list|revoke``: session administration from the command line.

The commands open the gateway's session store directly (``sessions.store``
in gateway.yaml, or ``--store URI``), act through the same audited core as the
admin API (:class:`proxy.adminapi.acts.SessionAdmin`) and record every act in
the gateway's audit log under ``--actor`` (default ``cli:<login>``), opened
with the keyring as ``tokengate keys`` does. A revoke is written to the audit
log first: if that fails, nothing is revoked. ``--all`` asks for confirmation
(``--yes`` skips). Output names users, counts and sid hashes, never a session
id or a token. ``memory:`` stores live inside one gateway process and cannot
be reached from here: use the admin API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from audit.config import AuditConfig
from audit.errors import AuditError
from kms_client.config import KeysConfig
from kms_client.keysetup import audited_keys
from policy.errors import PolicyError
from proxy.adminapi.acts import Actor, SessionAdmin
from proxy.adminapi.listing import is_session_id, is_sub, rfc3339, session_view, sid_hash
from proxy.cli.keys_cmd import ACTOR_OPTION, CONFIG_OPTION, collect_shares
from proxy.sessions.config import SessionStoreConfig
from tokengate.errors import GatewayError

Act = Callable[[SessionAdmin], Awaitable[None]]

STORE_OPTION = click.option(
    "--store",
    "store_uri",
    metavar="URI",
    help="session store URI (sqlite:..., redis://...) instead of gateway.yaml's sessions.store",
)
PREFIX_OPTION = click.option(
    "--key-prefix",
    help="with --store: the Redis key prefix (default: gateway.yaml's sessions.store.key_prefix)",
)


@dataclass(frozen=True)
class SessionsFile:
    """The parts of gateway.yaml the session commands need."""

    store: SessionStoreConfig
    keys: KeysConfig
    audit: AuditConfig
    data_dir: Path
    production: bool


def load_sessions_file(path: Path, store_uri: str | None, key_prefix: str | None) -> SessionsFile:
    """gateway.yaml validated as start-up does, with ``--store``/``--key-prefix`` applied."""
    from proxy.settings import load_settings

    try:
        settings = load_settings(path)
    except PolicyError as e:
        raise click.ClickException("invalid configuration:\n  " + "\n  ".join(e.problems)) from e
    gw = settings.gateway
    if key_prefix is not None and store_uri is None:
        raise click.UsageError("--key-prefix goes with --store")
    store = gw.sessions.store
    if store_uri is not None:
        values = {**store.model_dump(), "uri": store_uri}
        if key_prefix is not None:
            values["key_prefix"] = key_prefix
        try:
            store = SessionStoreConfig.model_validate(values)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--store/--key-prefix") from e
    if store.uri.startswith("memory:"):
        raise click.UsageError("memory: sessions live inside the gateway; use the admin API")
    if settings.production and (problems := store.production_problems()):
        raise click.ClickException("; ".join(problems))
    return SessionsFile(store, gw.keys, gw.audit, settings.data_dir, settings.production)


def run(cfg: SessionsFile, act: Act) -> None:
    """Run ``act`` on the opened store with the audit log; errors become one-line CLI errors."""

    async def main() -> None:
        async with audited_keys(
            keys=cfg.keys,
            audit=cfg.audit,
            data_dir=cfg.data_dir,
            production=cfg.production,
            background=False,
            actor="cli",
            shares=lambda: collect_shares(()),
        ) as (audit_log, _):
            store = cfg.store.open(data_dir=cfg.data_dir, workers=1)
            await store.open()
            try:
                await act(SessionAdmin(store, audit_log))
            finally:
                await store.close()

    try:
        asyncio.run(main())
    except (GatewayError, AuditError) as e:
        raise click.ClickException(str(e)) from e


def _without_credentials(uri: str) -> str:
    """``uri`` without ``user:password@`` and without options, fit for a prompt."""
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def register(cli: click.Group) -> None:
    """Add the ``sessions`` group to the root command."""
    cli.add_command(sessions)


@click.group()
def sessions() -> None:
    """List and revoke user sessions."""


def _sub(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_sub(value):
        raise click.BadParameter("must be 1..1024 characters without control characters")
    return value


@sessions.command("list")
@click.option("--user", "sub", required=True, callback=_sub, help="the user id (sub)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@CONFIG_OPTION
@STORE_OPTION
@PREFIX_OPTION
@ACTOR_OPTION
def list_cmd(
    sub: str,
    as_json: bool,
    config_path: Path,
    store_uri: str | None,
    key_prefix: str | None,
    actor: str,
) -> None:
    """Show the live sessions of a user (recorded in the audit log)."""

    async def act(admin: SessionAdmin) -> None:
        views = [session_view(s) for s in await admin.list_sessions(Actor(actor), sub)]
        if as_json:
            click.echo(json.dumps({"sub": sub, "count": len(views), "sessions": views}))
            return
        for v in views:
            amr = ",".join(v["amr"]) if isinstance(v["amr"], list) else ""
            click.echo(
                f"{v['sid_hash']}  created {v['created']}  last seen {v['last_seen']}  "
                f"expires {v['expires_at']}  amr={amr or '-'}"
            )
        click.echo(f"{len(views)} live session(s) of {sub!r}")

    run(load_sessions_file(config_path, store_uri, key_prefix), act)


@sessions.command()
@click.option("--sid", help="revoke this session")
@click.option("--user", "sub", callback=_sub, help="revoke every session of this user (sub)")
@click.option("--all", "everyone", is_flag=True, help="revoke every session of every user")
@click.option("--yes", is_flag=True, help="with --all: do not ask for confirmation")
@click.option("--reason", help="why, for the audit log (at most 256 characters)")
@CONFIG_OPTION
@STORE_OPTION
@PREFIX_OPTION
@ACTOR_OPTION
def revoke(
    sid: str | None,
    sub: str | None,
    everyone: bool,
    yes: bool,
    reason: str | None,
    config_path: Path,
    store_uri: str | None,
    key_prefix: str | None,
    actor: str,
) -> None:
    """Revoke one session (--sid), a user's sessions (--user) or all (--all)."""
    if sum((sid is not None, sub is not None, everyone)) != 1:
        raise click.UsageError("give exactly one of --sid, --user, --all")
    if sid is not None and not is_session_id(sid):
        raise click.BadParameter("not a session id", param_hint="--sid")
    if reason is not None and (len(reason) > 256 or not reason.isprintable()):
        raise click.BadParameter("at most 256 printable characters", param_hint="--reason")
    if yes and not everyone:
        raise click.UsageError("--yes goes with --all")
    cfg = load_sessions_file(config_path, store_uri, key_prefix)
    if everyone and not yes:
        where = _without_credentials(cfg.store.uri)
        click.confirm(f"revoke every session of every user in {where}?", abort=True)
    who = Actor(actor)

    async def act(admin: SessionAdmin) -> None:
        if sid is not None:
            done = await admin.revoke_session(who, sid, reason=reason)
            outcome = "revoked 1 session" if done else "revoked 0 sessions (none live with this id)"
            click.echo(f"{outcome}: sid_hash {sid_hash(sid)}")
        elif sub is not None:
            count = await admin.revoke_user(who, sub, reason=reason)
            click.echo(f"revoked {count} session(s) of {sub!r}")
        else:
            cutoff = await admin.revoke_all(who, reason=reason)
            click.echo(f"revoked every session created before {rfc3339(cutoff)}")

    run(cfg, act)
