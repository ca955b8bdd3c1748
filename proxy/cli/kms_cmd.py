"""``tokengate kms unseal|seal|status|split``: the root key and running gateways.

``unseal``, ``seal`` and ``status`` talk to every running gateway process
through its control socket (``keys.control_dir``, default
``DATA_DIR/kms/control``). ``unseal`` collects Shamir shares from files or
hidden prompts until the threshold is reached and sends them to each
process; shares are never echoed. ``split`` turns a local root into k-of-n
shares (or creates a fresh shared root for ``local:shamir``) and writes each
share to its own 0600 file.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import click

from kms_client import control
from kms_client.config import KeysConfig
from kms_client.local_root import LocalRootKey
from kms_client.root_uri import DEV_ROOT_URI, open_root, parse_local
from kms_client.shamir import Share
from proxy.cli.keys_cmd import (
    ACTOR_OPTION,
    CONFIG_OPTION,
    KeysFile,
    collect_shares,
    load_keys_file,
)
from tokengate.errors import GatewayError


def register(cli: click.Group) -> None:
    """Add the ``kms`` group to the root command."""
    cli.add_command(kms)


@click.group()
def kms() -> None:
    """Unseal, seal and inspect running gateways; split the local root key."""


def _control_dir(cfg: KeysFile) -> Path:
    if cfg.keys.control_dir:
        return Path(cfg.keys.control_dir)
    return control.default_control_dir(cfg.data_dir)


def _broadcast(cfg: KeysFile, message: dict[str, object]) -> bool:
    """Send ``message`` to every gateway process; print one line each; True if all ok."""
    directory = _control_dir(cfg)
    sockets = control.sockets(directory)
    if not sockets:
        raise click.ClickException(f"kms: no running gateway found in {directory}")

    async def send_all() -> list[dict[str, object]]:
        replies = []
        for sock in sockets:
            try:
                replies.append(await control.request(sock, message))
            except (OSError, TimeoutError) as e:
                replies.append({"ok": False, "error": f"unreachable ({type(e).__name__})"})
        return replies

    ok = True
    for sock, reply in zip(sockets, asyncio.run(send_all()), strict=True):
        name = sock.name.removesuffix(".sock")
        if reply.get("ok"):
            state = "sealed" if reply.get("sealed") else "unsealed"
            version = reply.get("keyring_version")
            click.echo(f"{name}: {state}" + (f" (keyring v{version})" if version else ""))
        else:
            ok = False
            click.echo(f"{name}: {reply.get('error')}", err=True)
    return ok


@kms.command()
@CONFIG_OPTION
@click.option(
    "--share-file",
    "share_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="file holding one share (repeatable); the rest are prompted",
)
@click.option("--no-shares", is_flag=True, help="auto-unseal through the root (no Shamir)")
@ACTOR_OPTION
def unseal(config_path: Path, share_files: tuple[Path, ...], no_shares: bool, actor: str) -> None:
    """Unseal every running gateway (Shamir shares for local:shamir roots)."""
    cfg = load_keys_file(config_path)
    message: dict[str, object] = {"op": "unseal", "actor": actor}
    if not no_shares:
        try:
            message["shares"] = [s.encode() for s in collect_shares(share_files)]
        except GatewayError as e:
            raise click.ClickException(str(e)) from e
    if not _broadcast(cfg, message):
        raise click.ClickException("kms: not every gateway process unsealed")


@kms.command()
@CONFIG_OPTION
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@ACTOR_OPTION
def seal(config_path: Path, yes: bool, actor: str) -> None:
    """Drop all key material from every running gateway (requests then get 503)."""
    cfg = load_keys_file(config_path)
    if not yes:
        click.confirm("seal every gateway process? requests fail until unsealed", abort=True)
    if not _broadcast(cfg, {"op": "seal", "actor": actor}):
        raise click.ClickException("kms: not every gateway process sealed")


@kms.command()
@CONFIG_OPTION
def status(config_path: Path) -> None:
    """Show whether each running gateway process is sealed."""
    if not _broadcast(load_keys_file(config_path), {"op": "status"}):
        raise click.ClickException("kms: some gateway processes did not answer")


@kms.command()
@CONFIG_OPTION
@click.option("-n", "--shares", type=click.IntRange(2, 255), required=True, help="shares to make")
@click.option("-k", "--threshold", type=click.IntRange(2, 255), required=True, help="shares needed")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="directory for share-<i>.txt files (0600), one per custodian",
)
def split(config_path: Path, shares: int, threshold: int, out_dir: Path) -> None:
    """Split the local root key into SHARES shares, any THRESHOLD of which unseal."""
    if threshold > shares:
        raise click.UsageError("threshold cannot exceed the number of shares")
    cfg = load_keys_file(config_path)
    if out_dir.exists() and any(out_dir.glob("share-*.txt")):
        raise click.ClickException(f"kms: {out_dir} already holds shares; use an empty --out-dir")
    try:
        made = asyncio.run(_split(cfg.keys, cfg.data_dir, shares, threshold))
    except GatewayError as e:
        raise click.ClickException(str(e)) from e
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for share in made:
        path = out_dir / f"share-{share.x}.txt"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as e:
            raise click.ClickException(f"kms: {path} already exists; use an empty --out-dir") from e
        with os.fdopen(fd, "w") as f:
            f.write(share.encode() + "\n")
    click.echo(f"wrote {len(made)} shares ({threshold} needed) to {out_dir}")
    click.echo("hand each file to one custodian, then delete it here;")
    click.echo("set keys.root to 'local:shamir' and remove the old root file or variable")


async def _split(keys: KeysConfig, data_dir: Path, n: int, k: int) -> list[Share]:
    uri = keys.root or DEV_ROOT_URI
    if not uri.startswith("local:"):
        raise click.ClickException("kms: only a local: root can be split into shares")
    spec = parse_local(uri, data_dir=data_dir)
    if spec.source == "shamir":
        return await asyncio.to_thread(
            LocalRootKey.create_shamir, spec.table, shares=n, threshold=k
        )
    root = open_root(uri, data_dir=data_dir)
    if not isinstance(root, LocalRootKey):
        raise click.ClickException("kms: only a local: root can be split into shares")
    await root.open()
    try:
        return root.split(shares=n, threshold=k)
    finally:
        await root.close()
