"""``tokengate token tokenize|detokenize|delete``: the vault through the admin API.

The command never opens the vault or the keyring itself: it calls the
running gateway's admin API (``--admin-url``, default the admin listener of
gateway.yaml), so every act is authenticated by an API key with a role
(tokenize: operator; detokenize, delete: admin) and audited by the gateway.

Secrets stay off the command line: the API key comes from ``--api-key-file``
or the ``TOKENGATE_API_KEY`` environment variable, never an argument, and
values are best given on stdin (``-``: one per line) rather than as
arguments, which other local users can see in the process list. Output is
JSON on stdout, merged over the requests (at most 500 items and 16 KiB each)
that a long input is split into; errors go to stderr.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import aiohttp
import click

from policy.errors import PolicyError
from proxy.adminapi.bodies import MAX_BODY
from proxy.adminapi.keys import is_api_key
from proxy.adminapi.openapi import API
from proxy.adminapi.token_api import MAX_ITEMS

ENV_KEY: Final = "TOKENGATE_API_KEY"
_BUDGET: Final = MAX_BODY - 2048  # room for the class, owner, tenant and JSON punctuation


def register(cli: click.Group) -> None:
    """Add the ``token`` group to the root command."""
    cli.add_command(token)


@click.group()
def token() -> None:
    """Tokenize, detokenize and delete through the gateway's admin API."""


def _common[F: Callable[..., object]](f: F) -> F:
    options = [
        click.option("--class", "field_class", required=True, help="field class (policy files)"),
        click.option("--admin-url", help="admin API base URL (default: gateway.yaml's listener)"),
        click.option(
            "--config",
            "config_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=Path("gateway.yaml"),
            show_default=True,
            help="gateway.yaml, read for the default --admin-url",
        ),
        click.option(
            "--api-key-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"file holding the admin API key (default: ${ENV_KEY})",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=30.0,
            show_default=True,
            help="seconds each request may take",
        ),
        click.argument("items", nargs=-1),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@token.command("tokenize")
@_common
@click.option("--owner", help="record owner (a user id)")
@click.option("--tenant", default="", help="record tenant")
def tokenize_cmd(
    field_class: str,
    admin_url: str | None,
    config_path: Path,
    api_key_file: Path | None,
    timeout: float,
    items: tuple[str, ...],
    owner: str | None,
    tenant: str,
) -> None:
    """Tokenize ITEMS (values; '-' reads them from stdin, one per line). Operator role."""
    extra: dict[str, object] = {"tenant": tenant}
    if owner is not None:
        extra["owner"] = owner
    _call("tokenize", "values", field_class, items, extra, admin_url, config_path, api_key_file,
          timeout)  # fmt: skip


@token.command("detokenize")
@_common
def detokenize_cmd(
    field_class: str,
    admin_url: str | None,
    config_path: Path,
    api_key_file: Path | None,
    timeout: float,
    items: tuple[str, ...],
) -> None:
    """Print the values behind ITEMS (tokens; '-' reads stdin). Admin role."""
    _call("detokenize", "tokens", field_class, items, {}, admin_url, config_path, api_key_file,
          timeout)  # fmt: skip


@token.command("delete")
@_common
def delete_cmd(
    field_class: str,
    admin_url: str | None,
    config_path: Path,
    api_key_file: Path | None,
    timeout: float,
    items: tuple[str, ...],
) -> None:
    """Erase the records behind ITEMS (tokens; '-' reads stdin) for good. Admin role."""
    _call("delete", "tokens", field_class, items, {}, admin_url, config_path, api_key_file,
          timeout)  # fmt: skip


def _call(
    action: str,
    list_name: str,
    field_class: str,
    args: tuple[str, ...],
    extra: dict[str, object],
    admin_url: str | None,
    config_path: Path,
    api_key_file: Path | None,
    timeout: float,
) -> None:
    values = _items(args)
    if not values:
        raise click.UsageError("give at least one item (or '-' to read them from stdin)")
    url = f"{(admin_url or _default_url(config_path)).rstrip('/')}{API}/tokens/{action}"
    key = _api_key(api_key_file)
    limit = aiohttp.ClientTimeout(total=timeout)
    answers = asyncio.run(_post_all(url, key, limit, field_class, list_name, values, extra))
    click.echo(json.dumps(_merge(field_class, answers)))


def _items(args: tuple[str, ...]) -> list[str]:
    """The items: arguments, with '-' replaced by stdin's lines (line ends removed)."""
    out: list[str] = []
    for arg in args:
        if arg == "-":
            out += [line.rstrip("\r\n") for line in sys.stdin if line.rstrip("\r\n")]
        else:
            out.append(arg)
    return out


def _default_url(config_path: Path) -> str:
    """http://<admin host>:<admin port> from gateway.yaml."""
    from proxy.cli.gatewayfile import load_gateway_file

    if not config_path.is_file():
        raise click.UsageError(f"no {config_path}: give --admin-url or --config")
    try:
        admin = load_gateway_file(config_path).gateway.admin
    except PolicyError as e:
        raise click.ClickException("invalid configuration:\n  " + "\n  ".join(e.problems)) from e
    host = _connectable(admin.host)
    return f"http://[{host}]:{admin.port}" if ":" in host else f"http://{host}:{admin.port}"


def _connectable(host: str) -> str:
    """The address to reach a listener bound to ``host`` (a wildcard means loopback)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "127.0.0.1"
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return host


def _api_key(path: Path | None) -> str:
    """The API key from the file or the environment; its text is never printed."""
    if path is not None:
        key = path.read_text("utf-8").strip()
        where = str(path)
    else:
        key = os.environ.get(ENV_KEY, "").strip()
        where = f"${ENV_KEY}"
        if not key:
            raise click.UsageError(f"give --api-key-file or set {ENV_KEY}")
    if not is_api_key(key):
        raise click.UsageError(f"{where} does not hold an admin API key (tga_...)")
    return key


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    """Consecutive slices that fit one request (item count and body size)."""
    chunk: list[str] = []
    size = 0
    for v in values:
        cost = len(json.dumps(v)) + 1
        if chunk and (len(chunk) >= MAX_ITEMS or size + cost > _BUDGET):
            yield chunk
            chunk, size = [], 0
        chunk.append(v)
        size += cost
    if chunk:
        yield chunk


async def _post_all(
    url: str,
    key: str,
    limit: aiohttp.ClientTimeout,
    field_class: str,
    list_name: str,
    values: list[str],
    extra: dict[str, object],
) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"}
    answers = []
    async with aiohttp.ClientSession(timeout=limit, headers=headers) as http:
        for chunk in _chunks(values):
            body = {"class": field_class, list_name: chunk, **extra}
            answers.append(await _post(http, url, body))
    return answers


async def _post(
    http: aiohttp.ClientSession, url: str, body: dict[str, object]
) -> dict[str, object]:
    try:
        async with http.post(url, json=body) as resp:
            data = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise click.ClickException(
            f"token: the admin API did not answer ({type(e).__name__})"
        ) from e
    if not isinstance(data, dict):
        raise click.ClickException(f"token: the admin API answered {status} without a JSON object")
    if status != 200:
        raise click.ClickException(
            f"token: {status} {data.get('error', 'error')}: {data.get('message', '')}"
        )
    return data


def _merge(field_class: str, answers: list[dict[str, object]]) -> dict[str, object]:
    """One answer for all requests: results concatenated, counts summed."""
    out: dict[str, object] = {"class": field_class}
    results: list[object] = []
    count = deleted = 0
    for a in answers:
        part = a.get("results")
        if isinstance(part, list):
            results += part
        n, d = a.get("count"), a.get("deleted")
        count += n if isinstance(n, int) else 0
        deleted += d if isinstance(d, int) else 0
    if any("deleted" in a for a in answers):
        out.update(count=count, deleted=deleted)
    else:
        out["results"] = results
    return out
