"""The TEE side of ``tokengate demo``: a KMS service and one simulated worker, on embedded defaults.

WARNING: the worker is a SIMULATED TEE (no hardware guarantee); the demo says
so and the gateway accepts it only because the demo's config sets
``insecure_simulated_tee: true``.

What :func:`start_tee` does, all under the demo's data dir:
1. the simulated TEE's development key (``tee/sim-attestation.key``), shared
   by the worker (signs its evidence), the KMS and the gateway (verify it);
2. ``kms/kms.yaml`` and a credentials file with two fresh credentials: an
   admin one kept in memory for this run, and the gateway's, written 0600 to
   ``kms-gateway.credential``; then ``tokengate kms serve`` on a free port;
3. the demo job bundle (``tee_jobs``: ``card_check``) measured and registered
   in the KMS registry as ``demo-cards-<measurement prefix>`` (a changed
   bundle is a new TEE; a re-run with the same bundle reuses the entry);
4. ``tokengate tee worker`` on a free loopback port.
It returns the gateway's ``tee:`` section pointing at them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import click
import yaml

from kms.auth import credential_digest, new_credential
from tee.broker_client import BrokerClient
from tee.bundle import measure
from tee.errors import KeyBrokerRefused
from tee.sim import KEY_FILE, load_or_create_key

TENANTS = ("demo", "default")  # the demo app's tenant claim, and messages without one
JOBS = ("card_check", "ssn_check")


def demo_bundle() -> Path:
    """Where the installed demo job bundle (``examples/tee_jobs``) is."""
    spec = importlib.util.find_spec("tee_jobs")
    if spec is None or not spec.submodule_search_locations:
        raise click.ClickException("the demo job bundle (package tee_jobs) is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoTee:
    """The started KMS and worker processes, and the gateway's ``tee:`` section."""

    section: dict[str, object]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def alive(self) -> bool:
        """Whether every process still runs."""
        return all(p.poll() is None for _, p in self.procs)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker, then the KMS (reverse start order)."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tokengate(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "proxy.cli", *args])  # noqa: S603 - our CLI


def _wait(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
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


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _kms_config(data_dir: Path, port: int, admin: str, gateway: str) -> Path:
    kms_dir = data_dir / "kms"
    kms_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    credentials = {
        "credentials": [
            {"id": "demo-admin", "roles": ["admin"], "sha256": credential_digest(admin)},
            {"id": "demo-gateway", "roles": ["gateway"], "sha256": credential_digest(gateway)},
        ]
    }
    (kms_dir / "credentials.yaml").write_text(yaml.safe_dump(credentials))
    config = {
        "data_dir": str(kms_dir / "data"),
        "listen": {"host": "127.0.0.1", "port": port},
        "credentials": str(kms_dir / "credentials.yaml"),
        "insecure_simulated_tee": True,
        "sim_key": str(data_dir / KEY_FILE),
    }
    path = kms_dir / "kms.yaml"
    path.write_text("# Written by `tokengate demo`.\n" + yaml.safe_dump(config, sort_keys=False))
    return path


async def _register(url: str, admin: str, bundle: Path) -> str:
    """Register the bundle's measurement (once per measurement); the TEE id."""
    measurement = measure(bundle).hex()
    tee_id = f"demo-cards-{measurement[:12]}"
    client = BrokerClient(url, credential=admin, timeout=10)
    try:
        try:
            await client.register(
                {
                    "id": tee_id,
                    "platform": "sim",
                    "measurements": {"measurement": [measurement]},
                    "tenants": list(TENANTS),
                    "jobs": list(JOBS),
                }
            )
        except KeyBrokerRefused as e:
            if e.code != "tee_exists":
                raise
            if not (await client.get_tee(tee_id)).active:
                raise click.ClickException(
                    f"the demo TEE {tee_id} was retired in this data dir; use a fresh --data-dir"
                ) from e
    finally:
        await client.close()
    return tee_id


def start_tee(data_dir: Path) -> DemoTee:
    """Start the KMS and the worker; the gateway's ``tee:`` section (see the module doc)."""
    load_or_create_key(data_dir)
    admin, gateway = new_credential(), new_credential()
    _write_private(data_dir / "kms-gateway.credential", gateway)
    kms_port, worker_port = free_port(), free_port()
    kms_url = f"http://127.0.0.1:{kms_port}"
    demo = DemoTee(section={})
    try:
        kms = _tokengate(
            "kms", "serve", "--config", str(_kms_config(data_dir, kms_port, admin, gateway))
        )
        demo.procs.append(("the KMS", kms))
        _wait(f"{kms_url}/readyz", kms, "the KMS")
        bundle = demo_bundle()
        tee_id = asyncio.run(_register(kms_url, admin, bundle))
        worker = _tokengate(
            *("tee", "worker", "--bundle", str(bundle), "--tee-id", tee_id),
            *("--listen", f"127.0.0.1:{worker_port}", "--kms", kms_url),
            *("--data-dir", str(data_dir), "--insecure-simulated-tee"),
        )
        demo.procs.append(("the TEE worker", worker))
        _wait(f"http://127.0.0.1:{worker_port}/v1/info", worker, "the TEE worker")
    except BaseException:
        demo.stop()
        raise
    demo.section = {
        "kms": {"url": kms_url, "credential_file": str(data_dir / "kms-gateway.credential")},
        "workers": [{"id": tee_id, "address": f"127.0.0.1:{worker_port}"}],
        "insecure_simulated_tee": True,
        "sim_key": str(data_dir / KEY_FILE),
    }
    return demo
