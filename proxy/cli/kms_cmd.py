"""``tokengate kms ...``: the root key and running gateways; the KMS service and its registry.

``unseal``, ``seal`` and ``status`` talk to every running gateway process
through its control socket (``keys.control_dir``, default
``DATA_DIR/kms/control``). ``unseal`` collects Shamir shares from files or
hidden prompts until the threshold is reached and sends them to each
process; shares are never echoed. ``split`` turns a local root into k-of-n
shares (or creates a fresh shared root for ``local:shamir``) and writes each
share to its own 0600 file.

``serve`` runs the KMS service (kms.yaml). ``credential create`` prints a
new caller credential once and its credentials-file entry. ``tees
register|retire|list`` talk to a running KMS's admin API over HTTP(S) with an
admin credential (``--credential-file`` or ``TOKENGATE_KMS_CREDENTIAL``).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from tee.registry import TeeEntry
from tokengate.errors import GatewayError

if TYPE_CHECKING:
    from tee.broker_client import BrokerClient


def register(cli: click.Group) -> None:
    """Add the ``kms`` group to the root command."""
    cli.add_command(kms)


@click.group()
def kms() -> None:
    """Unseal, seal and inspect running gateways; split the local root key; the KMS service."""


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


# ---- the KMS service: serve, credentials, TEE registry (admin API over HTTP) ----


@kms.command("serve")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="kms.yaml",
)
def kms_serve(config_path: Path) -> None:
    """Serve the KMS: TEE registry, key broker and remote-root operations."""
    from kms.config import load_kms_config
    from kms.runner import serve as serve_kms
    from proxy.cli.startup import start_errors

    with start_errors("cannot start the KMS"):
        settings = load_kms_config(config_path)
        asyncio.run(serve_kms(settings, announce=lambda line: click.echo(line, err=True)))


@kms.group("credential")
def kms_credential() -> None:
    """Make credentials for callers of the KMS."""


@kms_credential.command("create")
@click.option("--id", "holder", required=True, help="who holds it (written to the audit log)")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(["admin", "gateway"]),
    help="admin (registry) and/or gateway (grants, revoke, root operations)",
)
def kms_credential_create(holder: str, roles: tuple[str, ...]) -> None:
    """Print a new credential once, and the entry for the KMS's credentials file."""
    import yaml

    from kms.auth import credential_digest, new_credential

    secret = new_credential()
    entry = {"id": holder, "roles": sorted(set(roles)), "sha256": credential_digest(secret)}
    click.echo(f"credential (shown once, give it to {holder}): {secret}", err=True)
    click.echo("add to the credentials file under 'credentials:':", err=True)
    click.echo(yaml.safe_dump([entry], sort_keys=False).rstrip())


KMS_URL_OPTION = click.option(
    "--url",
    envvar="TOKENGATE_KMS_URL",
    required=True,
    help="the KMS service, https://host:port (env TOKENGATE_KMS_URL)",
)
KMS_CREDENTIAL_OPTION = click.option(
    "--credential-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="file (0600) holding an admin credential; else env TOKENGATE_KMS_CREDENTIAL",
)
KMS_CA_OPTION = click.option(
    "--ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA bundle that signs the KMS's certificate",
)
KMS_CLIENT_CERT_OPTION = click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM client certificate (mTLS); its key with --client-key",
)
KMS_CLIENT_KEY_OPTION = click.option(
    "--client-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --client-cert",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="print JSON")


def _kms_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in (
        JSON_OPTION,
        KMS_CLIENT_KEY_OPTION,
        KMS_CLIENT_CERT_OPTION,
        KMS_CA_OPTION,
        KMS_CREDENTIAL_OPTION,
        KMS_URL_OPTION,
    ):
        fn = option(fn)
    return fn


def _run_kms_call[T](options: dict[str, Any], call: Callable[[BrokerClient], Awaitable[T]]) -> T:
    """Run ``call`` with a client built from the command's options; errors as CLI errors."""
    import os

    from tee.broker_client import BrokerClient, client_tls, read_credential

    cert, key = options["client_cert"], options["client_key"]
    if (cert is None) != (key is None):
        raise click.UsageError("--client-cert and --client-key go together")

    async def main() -> T:
        credential = read_credential(
            env_name=None if options["credential_file"] else "TOKENGATE_KMS_CREDENTIAL",
            file=options["credential_file"],
            env=os.environ,
        )
        url: str = options["url"]
        context = None
        if url.startswith("https://"):
            context = client_tls(ca=options["ca"], cert=cert, key=key)
        client = BrokerClient(url, credential=credential, ssl_context=context)
        try:
            return await call(client)
        finally:
            await client.close()

    try:
        return asyncio.run(main())
    except GatewayError as e:
        raise click.ClickException(str(e)) from e


def _print_entries(entries: list[TeeEntry], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([e.to_json() for e in entries], indent=2))
        return
    for e in entries:
        jobs = ",".join(e.jobs) if e.jobs is not None else "*"
        click.echo(
            f"{e.id}\t{e.platform.value}\t{e.status}\ttenants={','.join(e.tenants)}\tjobs={jobs}"
            f"\tmeasurements={','.join(sorted(e.measurements))}"
        )


@kms.group("tees")
def kms_tees() -> None:
    """Register, retire and list TEEs in a running KMS (admin credential)."""


@kms_tees.command("list")
@_kms_options
def kms_tees_list(**options: Any) -> None:
    """List the registered TEEs."""

    async def call(client: BrokerClient) -> list[TeeEntry]:
        return await client.list_tees()

    _print_entries(_run_kms_call(options, call), options["as_json"])


@kms_tees.command("register")
@click.option("--id", "tee_id", default=None, help="the TEE's id")
@click.option(
    "--platform",
    type=click.Choice(["nitro", "sev-snp", "tdx", "sgx", "sim"]),
    default=None,
    help="its platform: the KMS verifies its evidence as this platform",
)
@click.option(
    "--measurement",
    "measurements",
    multiple=True,
    help="NAME=HEX accepted measurement (repeatable; several values per name allowed)",
)
@click.option(
    "--tenant", "tenants", multiple=True, help="tenant whose data it may see (repeatable)"
)
@click.option("--job", "jobs", multiple=True, help="job it may run (repeatable; none: any job)")
@click.option("--allow-debug", is_flag=True, help="accept evidence of a TEE in debug mode")
@click.option(
    "--accepted-tcb", "accepted_tcb", multiple=True, help="accepted TCB status (default UpToDate)"
)
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON or YAML registration body instead of the flags above",
)
@_kms_options
def kms_tees_register(**options: Any) -> None:
    """Register a TEE (its id can never be registered again, even once retired)."""
    body = _registration(options)

    async def call(client: BrokerClient) -> TeeEntry:
        return await client.register(body)

    _print_entries([_run_kms_call(options, call)], options["as_json"])


@kms_tees.command("retire")
@click.argument("tee_id")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@_kms_options
def kms_tees_retire(tee_id: str, yes: bool, **options: Any) -> None:
    """Retire TEE_ID for good: its sessions and unreleased grants are revoked."""
    if not yes:
        click.confirm(f"retire {tee_id}? this is final", abort=True)

    async def call(client: BrokerClient) -> TeeEntry:
        return await client.retire(tee_id)

    _print_entries([_run_kms_call(options, call)], options["as_json"])


def _registration(options: dict[str, Any]) -> dict[str, object]:
    """The registration body from --from-file or from the flags."""
    import yaml

    if options["from_file"] is not None:
        doc = yaml.safe_load(options["from_file"].read_text("utf-8"))
        if not isinstance(doc, dict):
            raise click.UsageError("--from-file must hold one JSON or YAML object")
        return doc
    if not options["tee_id"] or not options["platform"] or not options["tenants"]:
        raise click.UsageError("--id, --platform and --tenant are required (or --from-file)")
    measurements: dict[str, list[str]] = {}
    for item in options["measurements"]:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise click.UsageError("--measurement takes NAME=HEX")
        measurements.setdefault(name, []).append(value.lower())
    if not measurements:
        raise click.UsageError("at least one --measurement NAME=HEX is required")
    body: dict[str, object] = {
        "id": options["tee_id"],
        "platform": options["platform"],
        "measurements": measurements,
        "tenants": list(options["tenants"]),
        "allow_debug": options["allow_debug"],
    }
    if options["jobs"]:
        body["jobs"] = list(options["jobs"])
    if options["accepted_tcb"]:
        body["accepted_tcb"] = list(options["accepted_tcb"])
    return body
