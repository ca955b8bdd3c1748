"""Integration fixtures: the real backend of the proxy tests, and a gateway process factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.process import GatewayProcess, start_gateway
from tests.proxy.conftest import DEFAULT_ROUTES, backend, write_config

__all__ = ["backend"]

Launcher = Callable[..., GatewayProcess]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Write a config for ``upstream`` and start ``tokengate serve`` on it."""
    started: list[GatewayProcess] = []

    def run(
        upstream: str,
        *,
        routes: str = DEFAULT_ROUTES,
        workers: int = 1,
        extra: str = "",
        directory: Path | None = None,
        tls: tuple[Path, Path] | None = None,
        data_dir: Path | None = None,
        admin_extra: str = "",
    ) -> GatewayProcess:
        directory = directory or tmp_path
        port, admin = free_port(), free_port()
        config = write_config(directory, upstream, routes, gateway_extra=extra)
        text = config.read_text()
        text = text.replace("workers: 1", f"workers: {workers}")
        text = _set_ports(text, port, admin, tls, admin_extra)
        if data_dir is not None:
            text = text.replace("data_dir: data\n", f"data_dir: {data_dir}\n")
        config.write_text(text)
        gw = start_gateway(config, port, admin, workers=workers)
        gw.scheme = "https" if tls else "http"
        started.append(gw)
        return gw

    yield run
    for gw in started:
        gw.stop()


def _set_ports(
    text: str, port: int, admin: int, tls: tuple[Path, Path] | None, admin_extra: str = ""
) -> str:
    lines = []
    tls_part = f", tls: {{cert: '{tls[0]}', key: '{tls[1]}'}}" if tls else ""
    for line in text.splitlines():
        if line.startswith("listen:"):
            line = f"listen: {{host: 127.0.0.1, port: {port}{tls_part}}}"
        elif line.startswith("admin:"):
            line = f"admin: {{host: 127.0.0.1, port: {admin}{admin_extra}}}"
        lines.append(line)
    return "\n".join(lines) + "\n"
