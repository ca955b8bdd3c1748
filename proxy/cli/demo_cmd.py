"""``tokengate demo``: the demo app behind the gateway, on embedded defaults.

It first starts the TEE side (:mod:`proxy.cli.demo_tee`: a KMS service and
one SIMULATED TEE worker running the demo job bundle, registered in the KMS),
then writes a gateway.yaml under the data dir from the packaged example config
(ports, data dir, the app's address, the shared login secret and the ``tee:``
section filled in, plus the packaged ``tee-policies``: record creation checks
the card number in the TEE before tokenizing it), starts the gateway, then the
demo app bound to 127.0.0.1 on a free port (it fetches the gateway's JWKS to
check every request's signature and answers its login route with a login
assertion), and stops everything on SIGINT/SIGTERM. Every piece of state (app
database, sessions, audit logs, keys, the KMS registry) lives under the data
dir.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import click
import yaml

from proxy.cli.demo_tee import DemoTee, start_tee


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_demo_config(
    data_dir: Path,
    *,
    port: int,
    admin_port: int,
    app_port: int,
    tee: Mapping[str, object] | None = None,
) -> Path:
    """The packaged example config adapted to this run; returns its path.

    With ``tee`` (the gateway's ``tee:`` section), the TEE-checked routes of
    the packaged ``tee-policies`` are added.
    """
    packaged = resources.files("config")
    gateway = yaml.safe_load(packaged.joinpath("gateway.yaml").read_text(encoding="utf-8"))
    gateway["listen"]["port"] = port
    gateway["admin"]["port"] = admin_port
    gateway["data_dir"] = str(data_dir)
    gateway["upstreams"]["demo"]["url"] = f"http://127.0.0.1:{app_port}"
    gateway["sessions"]["login"]["secret_file"] = str(data_dir / "login.secret")
    # WebAuthn needs a host name, not an IP address: open the demo at localhost.
    gateway["sessions"]["mfa"] = {
        "webauthn": {"rp_id": "localhost", "origins": [f"http://localhost:{port}"]}
    }
    gateway["policies"] = [str(Path(str(packaged.joinpath("policies"))) / "*.yaml")]
    if tee is not None:
        gateway["tee"] = dict(tee)
        gateway["policies"].append(str(Path(str(packaged.joinpath("tee-policies"))) / "*.yaml"))
    path = data_dir / "gateway.yaml"
    path.write_text(
        "# Written by `tokengate demo` from the packaged config/gateway.yaml.\n"
        + yaml.safe_dump(gateway, sort_keys=False)
    )
    return path


def _wait_until_up(
    url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"{what} exited during start-up (see its log above)")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback URL we built
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise click.ClickException(f"{what} did not answer in time")


def _login_secret(data_dir: Path) -> Path:
    """The HS256 secret the gateway and the app share (created 0600 on first run)."""
    path = data_dir / "login.secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


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
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app_port = _free_port()
    secret = _login_secret(data_dir)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))
    # The TEE side first (the gateway attests the worker at start), then the
    # gateway (the app fetches the gateway's JWKS when it starts), then the app.
    tee: DemoTee = start_tee(data_dir)
    gateway: subprocess.Popen[bytes] | None = None
    app: subprocess.Popen[bytes] | None = None
    code = 1
    try:
        config = write_demo_config(
            data_dir, port=port, admin_port=admin_port, app_port=app_port, tee=tee.section
        )
        gateway = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "proxy.cli", "serve", "--config", str(config)]
            + (["--workers", str(workers)] if workers is not None else [])
        )
        _wait_until_up(f"http://127.0.0.1:{admin_port}/.tokengate/healthz", gateway, "the gateway")
        app = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "demo_backend",
                *("--host", "127.0.0.1", "--port", str(app_port)),
                *("--data-dir", str(data_dir / "app")),
                *("--tokengate-login-secret-file", str(secret)),
                *(
                    "--tokengate-jwks-url",
                    f"http://127.0.0.1:{port}/.well-known/tokengate/jwks.json",
                ),
                *("--tokengate-identity-audience", "demo-app"),
            ]
        )
        _wait_until_up(f"http://127.0.0.1:{app_port}/healthz", app, "the demo app")
        click.echo(
            f"tokengate demo\n"
            f"  the app through tokengate: http://localhost:{port}/\n"
            f"  users: alice/alice, bob/bob (role user), carol/carol (role support)\n"
            f"  admin: http://127.0.0.1:{admin_port}/.tokengate/{{healthz,readyz,metrics}}\n"
            f"  TEE:   new records' card numbers are checked by card_check in a SIMULATED\n"
            f"         TEE worker (no hardware guarantee) before they are tokenized\n"
            f"  config: {config}\n"
            f"  state:  {data_dir}\n"
            f"Ctrl-C stops both (and the TEE worker and the KMS)."
        )
        while not stopping and gateway.poll() is None and app.poll() is None and tee.alive():
            time.sleep(0.2)
    finally:
        if gateway is not None:
            code = _stop(gateway, 60)
        if app is not None:
            _stop(app, 10)
        tee.stop()
    sys.exit(code)


def register(cli: click.Group) -> None:
    """Attach ``demo``."""
    cli.add_command(demo)
