"""Fixtures for the egress relay: real HTTPS third parties, the relay in-process, real clients.

- ``third_party``: an aiohttp HTTPS server for ``localhost`` whose certificate
  comes from a trustme CA the relay is told to trust (``egress.upstream_ca``);
  it records every request it receives and answers what the test sets.
- ``impostor``: the same server behind a certificate from another CA.
- ``start_relay``: writes gateway.yaml (classes, egress routes, clients) and
  opens the relay with :func:`proxy.egress.server.open_egress`, as the
  command does.
- ``RelayClient``: an aiohttp client configured like a backend would be:
  ``HTTPS_PROXY=http://name:secret@relay`` (``trust_env``) and the relay's CA.
"""

from __future__ import annotations

import json
import os
import ssl
import textwrap
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from yarl import URL

with warnings.catch_warnings():
    # mitmproxy 12 builds its flow-filter grammar with pyparsing's old camelCase names
    # at import time; the suite turns warnings into errors.
    warnings.simplefilter("ignore", DeprecationWarning)
    import mitmproxy.addons  # noqa: F401

from proxy.egress.clients import new_client_secret, secret_digest
from proxy.egress.server import RunningEgress, open_egress
from tests.conftest import free_port
from vault.api import TokenizeItem

CLASSES = """
classes:
  pan: {format: pan, keep_last: 4}
  ssn: {format: ssn}
  email: {format: opaque, prefix: em}
"""


@dataclass
class Seen:
    """One request as the third party received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class ThirdParty:
    """A real HTTPS server; ``answer`` is what it replies (JSON)."""

    port: int
    ca: trustme.CA
    seen: list[Seen] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=lambda: {"ok": True})


async def _serve(
    ca: trustme.CA, party: ThirdParty | None = None
) -> tuple[ThirdParty, web.AppRunner]:
    party = party or ThirdParty(free_port(), ca)

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        party.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        return web.json_response(party.answer)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    await web.TCPSite(runner, "127.0.0.1", party.port, ssl_context=server_ctx).start()
    return party, runner


@pytest.fixture
async def third_party() -> AsyncIterator[ThirdParty]:
    party, runner = await _serve(trustme.CA())
    yield party
    await runner.cleanup()


@pytest.fixture
async def impostor() -> AsyncIterator[ThirdParty]:
    """A server for 'localhost' whose certificate no trusted CA issued."""
    party, runner = await _serve(trustme.CA())
    yield party
    await runner.cleanup()


@dataclass
class Credentials:
    name: str
    secret: str


@dataclass
class Relay:
    """A running relay and what tests need around it."""

    running: RunningEgress
    directory: Path
    port: int
    clients: dict[str, Credentials]

    @property
    def ca_pem(self) -> bytes:
        return self.running.ca.cert_pem

    async def tokens(self, class_name: str, *values: str) -> list[str]:
        """Tokens of ``values`` made by the relay's own vault (as the gateway would have)."""
        from proxy.cli.gatewayfile import load_gateway_file

        spec = load_gateway_file(self.directory / "gateway.yaml").classes[class_name].spec
        made = await self.running.fields.vault.tokenize(
            [TokenizeItem(v, spec, "alice", "") for v in values]
        )
        assert all(isinstance(t, str) for t in made)
        return [str(t) for t in made]

    def audit_entries(self, event: str | None = None) -> list[dict[str, Any]]:
        """The fields of every audit entry written so far, optionally of one event."""
        entries = []
        for path in sorted((self.directory / "data" / "audit").rglob("*.jsonl")):
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                if event is None or entry.get("event") == event:
                    entries.append({"event": entry["event"], **entry["fields"]})
        return entries

    def audit_text(self) -> str:
        return "".join(p.read_text() for p in (self.directory / "data" / "audit").rglob("*"))


def write_config(
    directory: Path,
    *,
    egress_routes: str,
    upstream_ca: bytes,
    clients: dict[str, Credentials],
    roles: dict[str, list[str]],
    egress_extra: str = "",
    gateway_extra: str = "",
) -> Path:
    """gateway.yaml, the class declarations and the egress routes under ``directory``."""
    (directory / "policies").mkdir(parents=True, exist_ok=True)
    (directory / "policies" / "classes.yaml").write_text(textwrap.dedent(CLASSES))
    (directory / "egress").mkdir(exist_ok=True)
    (directory / "egress" / "routes.yaml").write_text(textwrap.dedent(egress_routes))
    (directory / "upstream-ca.pem").write_bytes(upstream_ca)
    client_lines = "\n".join(
        f"    - {{name: {c.name}, roles: {json.dumps(roles.get(c.name, []))}, "
        f"sha256: {secret_digest(c.secret)}}}"
        for c in clients.values()
    )
    config = directory / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            workers: 1
            data_dir: data
            upstreams:
              app: {url: "http://127.0.0.1:9"}
            tokenization: {rate_limits: "memory:"}
            """
        )
        + textwrap.dedent(gateway_extra)
        + "egress:\n"
        + f"  listen: {{host: 127.0.0.1, port: {free_port()}}}\n"
        + "  upstream_ca: upstream-ca.pem\n"
        + "  clients:\n"
        + client_lines
        + "\n"
        + textwrap.indent(textwrap.dedent(egress_extra), "  ")
    )
    return config


RelayFactory = Callable[..., Awaitable[Relay]]


@pytest.fixture
def no_env_proxy() -> Iterator[None]:
    """Clients find the relay through HTTPS_PROXY only (no stray NO_PROXY)."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.lower() in _PROXY_VARS}
    yield
    for k in list(os.environ):
        if k.lower() in _PROXY_VARS:
            del os.environ[k]
    os.environ.update(saved)


_PROXY_VARS = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}


@pytest.fixture
async def start_relay(tmp_path: Path, no_env_proxy: None) -> AsyncIterator[RelayFactory]:
    stack = AsyncExitStack()

    async def start(
        egress_routes: str,
        *,
        upstream_ca: bytes,
        roles: dict[str, list[str]] | None = None,
        egress_extra: str = "",
        gateway_extra: str = "",
    ) -> Relay:
        clients = {name: Credentials(name, new_client_secret()) for name in ("backend", "intruder")}
        config = write_config(
            tmp_path,
            egress_routes=egress_routes,
            upstream_ca=upstream_ca,
            clients=clients,
            roles=roles if roles is not None else {"backend": ["payments"]},
            egress_extra=egress_extra,
            gateway_extra=gateway_extra,
        )
        running = await stack.enter_async_context(open_egress(config, background=False))
        return Relay(running, tmp_path, running.relay.address[1], clients)

    yield start
    await stack.aclose()


class RelayClient:
    """A backend's HTTP client: HTTPS_PROXY with credentials, the relay's CA trusted."""

    def __init__(self, relay: Relay, *, client: str = "backend", secret: str | None = None):
        creds = relay.clients[client]
        self._proxy = f"http://{creds.name}:{secret or creds.secret}@127.0.0.1:{relay.port}"
        self._ssl = ssl.create_default_context(cadata=relay.ca_pem.decode("ascii"))
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RelayClient:
        os.environ["HTTPS_PROXY"] = self._proxy
        self.session = aiohttp.ClientSession(
            trust_env=True, connector=aiohttp.TCPConnector(ssl=self._ssl)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()
        os.environ.pop("HTTPS_PROXY", None)

    async def call(
        self, method: str, url: str | URL, **kwargs: Any
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """(status, JSON body or None, headers) of one call through the relay."""
        assert self.session is not None
        try:
            async with self.session.request(method, url, **kwargs) as resp:
                raw = await resp.read()
                json_body = raw and resp.content_type == "application/json"
                return resp.status, json.loads(raw) if json_body else None, dict(resp.headers)
        except aiohttp.ClientHttpProxyError as e:  # the relay refused the CONNECT itself
            return e.status, None, dict(e.headers or {})
