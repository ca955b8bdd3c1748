"""``tokengate demo``: the demo app behind the gateway, on embedded defaults.

It writes a gateway.yaml under the data dir from the packaged example config
(ports, data dir and the app's address filled in), starts the demo app as a
child process bound to 127.0.0.1 on a free port, and serves the gateway in
the foreground. Every piece of state (app database, audit log, keys) lives
under the data dir.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import click
import yaml

from policy.errors import PolicyError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_demo_config(data_dir: Path, *, port: int, admin_port: int, app_port: int) -> Path:
    """The packaged example config adapted to this run; returns its path."""
    packaged = resources.files("config")
    gateway = yaml.safe_load(packaged.joinpath("gateway.yaml").read_text(encoding="utf-8"))
    gateway["listen"]["port"] = port
    gateway["admin"]["port"] = admin_port
    gateway["data_dir"] = str(data_dir)
    gateway["upstreams"]["demo"]["url"] = f"http://127.0.0.1:{app_port}"
    gateway["policies"] = [str(Path(str(packaged.joinpath("policies"))) / "*.yaml")]
    path = data_dir / "gateway.yaml"
    path.write_text(
        "# Written by `tokengate demo` from the packaged config/gateway.yaml.\n"
        + yaml.safe_dump(gateway, sort_keys=False)
    )
    return path


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException("the demo app exited during start-up (see its log above)")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback URL we built
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise click.ClickException("the demo app did not answer in time")


@click.command("demo")
@click.option("--port", default=8080, show_default=True, help="public gateway port")
@click.option("--admin-port", default=8081, show_default=True, help="admin port (health, metrics)")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tokengate-demo"),
    show_default=True,
    help="all state of the demo goes here",
)
@click.option(
    "--workers", type=click.IntRange(min=0), default=None, help="gateway workers (0 = per CPU)"
)
def demo(port: int, admin_port: int, data_dir: Path, workers: int | None) -> None:
    """Run the demo app behind tokengate and print where to reach them."""
    from proxy.supervisor import serve_main

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app_port = _free_port()
    config = write_demo_config(data_dir, port=port, admin_port=admin_port, app_port=app_port)
    app = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "demo_backend",
            "--host",
            "127.0.0.1",
            "--port",
            str(app_port),
            "--data-dir",
            str(data_dir / "app"),
        ]
    )
    try:
        _wait_until_up(f"http://127.0.0.1:{app_port}/healthz", app)
        click.echo(
            f"tokengate demo\n"
            f"  the app through tokengate: http://127.0.0.1:{port}/\n"
            f"  users: alice/alice, bob/bob (role user), carol/carol (role support)\n"
            f"  admin: http://127.0.0.1:{admin_port}/.tokengate/{{healthz,readyz,metrics}}\n"
            f"  config: {config}\n"
            f"  state:  {data_dir}\n"
            f"Ctrl-C stops both."
        )
        try:
            code = serve_main(config, workers)
        except PolicyError as e:
            raise click.ClickException(
                "invalid configuration:\n  " + "\n  ".join(e.problems)
            ) from e
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
    sys.exit(code)


def register(cli: click.Group) -> None:
    """Attach ``demo``."""
    cli.add_command(demo)
