"""``tokengate keys list|rotate|revoke|destroy|rewrap``: the keyring lifecycle.

Every command opens the keyring the way the gateway does (same root, same
store, auto-unseal, prompting for Shamir shares when the root needs them),
acts, and records the act in the audit log under ``--actor``. Running
gateways pick the change up within ``keys.refresh_interval``. Destructive
commands say what they affect and ask for confirmation (``--yes`` skips).
Output names purposes, versions, states and key ids, never key material.

``rewrap`` also moves vault records (source ``vault``: the store of
gateway.yaml's ``vault:`` section, opened for the run and closed after) to the
primary tokenize version; ``revoke`` and ``destroy`` count the vault records a
tokenize version still protects before asking.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click

from audit.config import AuditConfig
from audit.errors import AuditError
from kms_client.config import KeysConfig
from kms_client.keyring import KeyKind
from kms_client.keysetup import audited_keys
from kms_client.manager import KeyManager
from kms_client.rewrap import RewrapSource, rewrap_sources, run_rewrap
from kms_client.shamir import Share
from policy.errors import PolicyError
from proxy.cli.gatewayfile import load_gateway_file
from tokengate.errors import GatewayError
from vault.config import VaultConfig
from vault.opening import open_store
from vault.rewrap import VaultRewrap
from vault.store import VaultStore

VAULT_SOURCE = "vault"


def default_actor() -> str:
    """``cli:<login name>``."""
    return f"cli:{getpass.getuser()}"


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("gateway.yaml"),
    show_default=True,
    help="gateway.yaml (its keys:, audit:, data_dir and mode are used)",
)
ACTOR_OPTION = click.option(
    "--actor",
    default=default_actor,
    show_default="cli:<user>",
    help="who is acting, for the audit log",
)


@dataclass(frozen=True)
class KeysFile:
    """The parts of gateway.yaml the key commands need."""

    keys: KeysConfig
    audit: AuditConfig
    data_dir: Path
    production: bool
    vault: VaultConfig = field(default_factory=VaultConfig)


def load_keys_file(path: Path) -> KeysFile:
    """The parts of gateway.yaml the key commands need, validated as start-up does."""
    try:
        gf = load_gateway_file(path)
    except PolicyError as e:
        raise click.ClickException("invalid configuration:\n  " + "\n  ".join(e.problems)) from e
    gw = gf.gateway
    return KeysFile(gw.keys, gw.audit, gf.data_dir, gf.production, gf.vault)


def collect_shares(files: tuple[Path, ...]) -> list[Share]:
    """Shares from files, else prompted (hidden) until the threshold is reached."""
    shares: list[Share] = []
    for i, f in enumerate(files, start=1):
        shares.append(Share.parse(f.read_text("utf-8"), position=i))
    while not shares or len(shares) < shares[0].threshold:
        need = f" (of {shares[0].threshold})" if shares else ""
        text = click.prompt(f"share {len(shares) + 1}{need}", hide_input=True)
        shares.append(Share.parse(text, position=len(shares) + 1))
    return shares


@asynccontextmanager
async def keys_session(
    cfg: KeysFile, *, actor: str, share_files: tuple[Path, ...] = ()
) -> AsyncIterator[KeyManager]:
    """An unsealed KeyManager whose acts go to the real audit log."""
    async with audited_keys(
        keys=cfg.keys,
        audit=cfg.audit,
        data_dir=cfg.data_dir,
        production=cfg.production,
        background=False,
        actor=actor,
        shares=lambda: collect_shares(share_files),
    ) as (_, manager):
        yield manager


def run(cfg: KeysFile, actor: str, act: Callable[[KeyManager], Awaitable[None]]) -> None:
    """Run ``act`` on an unsealed keyring; kms errors become one-line CLI errors."""

    async def main() -> None:
        async with keys_session(cfg, actor=actor) as manager:
            await act(manager)

    try:
        asyncio.run(main())
    except (GatewayError, AuditError) as e:
        raise click.ClickException(str(e)) from e


@asynccontextmanager
async def vault_store(cfg: KeysFile, wanted: bool = True) -> AsyncIterator[VaultStore | None]:
    """The configured vault store, open for the block (None when not ``wanted``)."""
    if not wanted:
        yield None
        return
    store = await open_store(cfg.vault, data_dir=cfg.data_dir)
    try:
        yield store
    finally:
        await store.close()


async def confirm(question: str) -> None:
    """Ask on the terminal (off the event loop); abort on no."""
    await asyncio.to_thread(click.confirm, question, abort=True)


def register(cli: click.Group) -> None:
    """Add the ``keys`` group to the root command."""
    cli.add_command(keys)


@click.group()
def keys() -> None:
    """List, rotate, revoke, destroy and rewrap keyring keys."""


@keys.command("list")
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_keys(config_path: Path, as_json: bool) -> None:
    """Show every purpose's key versions, states and the primary."""

    async def act(manager: KeyManager) -> None:
        rows = []
        for name, ring in sorted(manager.keyring().purposes.items()):
            signing = ring.kind is KeyKind.SIGNING
            kids = {s.version: s.kid for s in manager.verifiers(name)} if signing else {}
            for k in ring.keys:
                rows.append(
                    {
                        "purpose": name,
                        "kind": ring.kind.value,
                        "version": k.version,
                        "state": k.state.value,
                        "primary": k.version == ring.primary,
                        "created": k.created_at.isoformat(),
                        "kid": kids.get(k.version),
                    }
                )
        if as_json:
            click.echo(json.dumps({"keyring_version": manager.keyring_version, "keys": rows}))
            return
        click.echo(f"root: {manager.root_description}")
        click.echo(f"store: {manager.store_description} (keyring v{manager.keyring_version})")
        for r in rows:
            mark = "*" if r["primary"] else " "
            kid = f"  kid={r['kid']}" if r["kid"] else ""
            click.echo(
                f"{mark} {r['purpose']:<18} v{r['version']:<4} {r['state']:<13}"
                f" {r['kind']:<8} {r['created']}{kid}"
            )

    run(load_keys_file(config_path), default_actor(), act)


@keys.command()
@click.argument("purpose", required=False)
@click.option("--kwk", is_flag=True, help="rotate the keyring-wrapping key instead")
@CONFIG_OPTION
@ACTOR_OPTION
def rotate(purpose: str | None, kwk: bool, config_path: Path, actor: str) -> None:
    """Make a new primary for PURPOSE (old versions stay decrypt-only)."""
    if kwk == (purpose is not None):
        raise click.UsageError("give a PURPOSE or --kwk")

    async def act(manager: KeyManager) -> None:
        if purpose is None:
            click.echo(f"kwk now v{await manager.rotate_kwk(actor=actor)}; old kwk destroyed")
        else:
            click.echo(f"{purpose}: primary is now v{await manager.rotate(purpose, actor=actor)}")

    run(load_keys_file(config_path), actor, act)


@keys.command()
@click.argument("purpose")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@CONFIG_OPTION
@ACTOR_OPTION
def revoke(purpose: str, version: int, yes: bool, config_path: Path, actor: str) -> None:
    """Make VERSION of PURPOSE refuse to decrypt (fail closed)."""

    cfg = load_keys_file(config_path)

    async def act(manager: KeyManager) -> None:
        counts = await _impact(cfg, manager, purpose, version)
        click.echo(f"revoking {purpose} v{version}: data under it fails closed until rewrapped")
        _show(counts)
        if not yes:
            await confirm("revoke?")
        await manager.revoke(purpose, version, actor=actor)
        click.echo(f"{purpose} v{version} revoked")

    run(cfg, actor, act)


@keys.command()
@click.argument("purpose")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@CONFIG_OPTION
@ACTOR_OPTION
def destroy(purpose: str, version: int, yes: bool, config_path: Path, actor: str) -> None:
    """Destroy VERSION of PURPOSE for good (crypto-shredding)."""

    cfg = load_keys_file(config_path)

    async def act(manager: KeyManager) -> None:
        counts = await _impact(cfg, manager, purpose, version)
        click.echo(f"destroying {purpose} v{version} cannot be undone:")
        click.echo("- data still under it becomes unreadable forever (run 'keys rewrap' first)")
        _show(counts)
        click.echo("- the keyring-wrapping key is rotated, the old one destroyed in the root:")
        click.echo("  old keyring copies (backups, Redis AOF, PostgreSQL WAL) stop working")
        if not yes:
            await confirm("destroy?")
        await manager.destroy(purpose, version, actor=actor)
        click.echo(f"{purpose} v{version} destroyed")

    run(cfg, actor, act)


@keys.command()
@click.option("--source", "names", multiple=True, help="only these rewrap sources (repeatable)")
@click.option("--batch-size", type=click.IntRange(min=1), help="items per batch (default: config)")
@click.option("--rotate-kwk", is_flag=True, help="first re-wrap the keyring under a new KWK")
@CONFIG_OPTION
@ACTOR_OPTION
def rewrap(
    names: tuple[str, ...],
    batch_size: int | None,
    rotate_kwk: bool,
    config_path: Path,
    actor: str,
) -> None:
    """Move stored ciphertexts to the primary versions (resumable)."""
    cfg = load_keys_file(config_path)
    size = batch_size or cfg.keys.rewrap_batch_size
    _check_names(names)

    async def act(manager: KeyManager) -> None:
        if rotate_kwk:
            click.echo(f"keyring re-wrapped under kwk v{await manager.rotate_kwk(actor=actor)}")
        async with vault_store(cfg, not names or VAULT_SOURCE in names) as store:
            for source in _sources(manager, names, store):
                await _rewrap_one(manager, source, size, actor)

    run(cfg, actor, act)


async def _rewrap_one(manager: KeyManager, source: RewrapSource, size: int, actor: str) -> None:
    """Run one source to the end behind a progress bar; print what it did."""
    pending = await source.pending()
    with click.progressbar(length=pending, label=source.name) as bar:
        results = await run_rewrap(
            manager,
            [source],
            batch_size=size,
            on_batch=lambda _n, moved, _t: bar.update(moved),
            actor=actor,
        )
    r = results[source.name]
    left = "" if r.done else " (run again to finish)"
    click.echo(f"{source.name}: {r.rewrapped} rewrapped, {r.skipped} unreadable{left}")


def _check_names(names: tuple[str, ...]) -> None:
    known = {*rewrap_sources(), VAULT_SOURCE}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(f"unknown rewrap source(s): {', '.join(unknown)}")


def _sources(
    manager: KeyManager, names: tuple[str, ...], store: VaultStore | None
) -> list[RewrapSource]:
    """The registered sources (and the vault's when ``store`` is open) that ``names`` select."""
    registry = rewrap_sources()
    out = [factory(manager) for n, factory in registry.items() if not names or n in names]
    if store is not None:
        out.append(VaultRewrap(manager, store))
    return out


async def _impact(cfg: KeysFile, manager: KeyManager, purpose: str, version: int) -> dict[str, int]:
    manager.keyring().ring(purpose)  # unknown purpose: a clear error before anything else
    async with vault_store(cfg, purpose == "tokenize") as store:
        return {s.name: await s.count(purpose, version) for s in _sources(manager, (), store)}


def _show(counts: dict[str, int]) -> None:
    for name, n in counts.items():
        click.echo(f"- {name}: {n} item(s) under this version")
