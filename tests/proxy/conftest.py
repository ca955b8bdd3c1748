"""Fixtures for proxy tests: a real backend and an in-process gateway on real sockets."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from kms_client import KeyManager
from kms_client.keysetup import audited_keys
from proxy.accesslog import JsonAccessLogger
from proxy.app import build_app
from proxy.authn.setup import open_gate
from proxy.fieldsetup import FieldRuntime, open_fields
from proxy.protocol import GatewayRunner
from proxy.settings import Settings, load_settings
from proxy.state import Live
from proxy.upstreams import UpstreamPool
from tests.conftest import free_port
from tests.proxy.backends import make_backend

DEFAULT_ROUTES = """
routes:
  - name: everything
    match: {prefix: /}
    allow_unauthenticated: true
    websocket: true
"""


@dataclass
class Backend:
    url: str
    port: int
    app: web.Application


@dataclass
class Gateway:
    url: str
    port: int
    live: Live
    pool: UpstreamPool
    config: Path
    keys: KeyManager
    fields: FieldRuntime


def write_config(
    directory: Path, upstream_url: str, routes: str = DEFAULT_ROUTES, gateway_extra: str = ""
) -> Path:
    """gateway.yaml + policies/routes.yaml under ``directory``; returns gateway.yaml."""
    (directory / "policies").mkdir(parents=True, exist_ok=True)
    (directory / "policies" / "routes.yaml").write_text(textwrap.dedent(routes))
    config = directory / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            listen: {{host: 127.0.0.1, port: {free_port()}}}
            admin: {{host: 127.0.0.1, port: {free_port()}}}
            workers: 1
            data_dir: data
            upstreams:
              backend: {{url: "{upstream_url}", connect_timeout: 2s, read_timeout: 5s}}
            """
        )
        + textwrap.dedent(gateway_extra)
    )
    return config


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    app = make_backend()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield Backend(f"http://127.0.0.1:{port}", port, app)
    await runner.cleanup()


GatewayFactory = Callable[[Path], Awaitable[Gateway]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[GatewayFactory]:
    runners: list[tuple[GatewayRunner, UpstreamPool]] = []
    stack = AsyncExitStack()

    async def start(config: Path) -> Gateway:
        settings: Settings = load_settings(config)
        live = Live(settings)
        pool = UpstreamPool()
        pool.update(settings.gateway.upstreams)
        audit_log, keys = await stack.enter_async_context(
            audited_keys(
                keys=settings.gateway.keys,
                audit=settings.gateway.audit,
                data_dir=settings.data_dir,
                production=False,
                background=False,
            )
        )
        gate = await stack.enter_async_context(
            open_gate(settings, keys=keys, auditor=audit_log, workers=1)
        )
        fields = await stack.enter_async_context(
            open_fields(
                vault_config=settings.gateway.vault,
                tokenization=settings.gateway.tokenization,
                data_dir=settings.data_dir,
                keys=keys,
                audit=audit_log,
                workers=1,
            )
        )
        app = build_app(live, pool, keys, gate, fields)
        runner = GatewayRunner(app, access_log_class=JsonAccessLogger, shutdown_timeout=2)
        await runner.setup()
        port = settings.gateway.listen.port
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append((runner, pool))
        return Gateway(f"http://127.0.0.1:{port}", port, live, pool, config, keys, fields)

    yield start
    for runner, pool in runners:
        await runner.cleanup()
        await pool.close()
    await stack.aclose()


@pytest.fixture
async def gateway(tmp_path: Path, backend: Backend, start_gateway: GatewayFactory) -> Gateway:
    return await start_gateway(write_config(tmp_path, backend.url))
