"""The whole TEE flow in real processes: a KMS service, sim workers, a gateway, a recording backend.

Started as a user starts them (``tokengate kms serve``, ``tokengate tee
worker``, ``tokengate serve``), each with its output in a log file under the
lab's directory so a test can search every byte the processes wrote. The
backend runs in the test process and keeps every body it receives. Workers
share one data dir for the simulated TEE's development key, which the KMS and
the gateway are pointed at.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from kms.auth import credential_digest, new_credential
from proxy.cli.demo_tee import demo_bundle
from tee.broker_client import BrokerClient
from tee.bundle import measure
from tee.sim import KEY_FILE, load_or_create_key
from tee.worker_client import WorkerClient
from tests.conftest import free_port
from tests.integration.process import TOKENGATE, GatewayProcess, start_gateway, wait_ready

BUNDLE = demo_bundle()
POLICY = """
classes:
  pan: {format: pan, keep_last: 4}
routes:
  # Checked in the TEE, then tokenized in the same rule: the backend gets a token.
  - name: cards
    match: {methods: [POST], path: /cards}
    allow_unauthenticated: true
    tenant: acme
    request:
      - {field: $.card, action: tee, job: card_check, accept: {valid: true}, class: pan}
  # The job's verdict replaces the value: the backend gets the verdict, not the number.
  - name: verdicts
    match: {methods: [POST], path: /verdicts}
    allow_unauthenticated: true
    tenant: acme
    request:
      - {field: $.card, action: tee, job: card_check}
"""


@dataclass
class Proc:
    """One started process and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def spawn(name: str, args: Sequence[str], log: Path) -> Proc:
    with log.open("ab") as out:
        proc = subprocess.Popen([TOKENGATE, *args], stdout=out, stderr=subprocess.STDOUT)
    return Proc(name, proc, log)


@dataclass
class Backend:
    """The app behind the gateway: keeps every body and echoes it as JSON."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.bodies.append(body)
            return web.json_response({"received": json.loads(body or b"{}")})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class TeeLab:
    """Everything of one run; ``root`` holds every file any process wrote."""

    root: Path
    backend: Backend = field(default_factory=Backend)
    kms: Proc | None = None
    kms_url: str = ""
    admin: str = field(default="", repr=False)
    gateway_credential: str = field(default="", repr=False)
    workers: dict[str, Proc] = field(default_factory=dict)
    gateway: GatewayProcess | None = None

    @property
    def shared(self) -> Path:
        """The workers' data dir: the simulated TEE's development key lives here."""
        return self.root / "workers"

    def socket(self, tee_id: str) -> Path:
        return self.root / f"{tee_id}.sock"

    # ---- KMS --------------------------------------------------------------

    async def start_kms(self) -> None:
        kms_dir = self.root / "kms"
        kms_dir.mkdir(parents=True)
        load_or_create_key(self.shared)
        self.admin, self.gateway_credential = new_credential(), new_credential()
        credentials = {
            "credentials": [
                {"id": "ops", "roles": ["admin"], "sha256": credential_digest(self.admin)},
                {"id": "gw", "roles": ["gateway"], "sha256": credential_digest(self.gateway_credential)},
            ]
        }  # fmt: skip
        (kms_dir / "credentials.yaml").write_text(yaml.safe_dump(credentials))
        port = free_port()
        config = {
            "data_dir": str(kms_dir / "data"),
            "listen": {"host": "127.0.0.1", "port": port},
            "credentials": str(kms_dir / "credentials.yaml"),
            "insecure_simulated_tee": True,
            "sim_key": str(self.shared / KEY_FILE),
        }
        (kms_dir / "kms.yaml").write_text(yaml.safe_dump(config))
        self.kms_url = f"http://127.0.0.1:{port}"
        args = ["kms", "serve", "--config", str(kms_dir / "kms.yaml")]
        self.kms = spawn("kms", args, self.root / "kms.log")
        await self._wait_http(f"{self.kms_url}/readyz", self.kms)

    def kms_client(self, credential: str) -> BrokerClient:
        return BrokerClient(self.kms_url, credential=credential, timeout=10)

    async def register(self, tee_id: str, bundle: Path = BUNDLE) -> None:
        async with asyncio.timeout(10):
            client = self.kms_client(self.admin)
            try:
                await client.register(
                    {
                        "id": tee_id,
                        "platform": "sim",
                        "measurements": {"measurement": [measure(bundle).hex()]},
                        "tenants": ["acme", "default"],
                        "jobs": ["card_check"],
                    }
                )
            finally:
                await client.close()

    async def retire(self, tee_id: str) -> None:
        client = self.kms_client(self.admin)
        try:
            await client.retire(tee_id)
        finally:
            await client.close()

    # ---- workers ----------------------------------------------------------

    async def start_worker(self, tee_id: str, bundle: Path = BUNDLE) -> None:
        sock = self.socket(tee_id)
        sock.unlink(missing_ok=True)
        args = [
            *("tee", "worker", "--bundle", str(bundle), "--tee-id", tee_id),
            *("--listen", f"unix:{sock}", "--kms", self.kms_url),
            *("--data-dir", str(self.shared), "--insecure-simulated-tee"),
        ]
        proc = spawn(tee_id, args, self.root / f"{tee_id}.log")
        self.workers[tee_id] = proc
        deadline = time.monotonic() + 20
        async with WorkerClient(f"unix:{sock}", timeout=1) as client:
            while time.monotonic() < deadline:
                if proc.proc.poll() is not None:
                    raise AssertionError(f"worker {tee_id} exited:\n{proc.text()}")
                if sock.exists():
                    try:
                        await client.info()
                        return
                    except Exception:  # not listening yet
                        pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"worker {tee_id} did not start:\n{proc.text()}")

    def stop_worker(self, tee_id: str) -> None:
        self.workers.pop(tee_id).stop()

    # ---- gateway ----------------------------------------------------------

    async def start_gateway(self, tee_ids: Sequence[str]) -> GatewayProcess:
        gw_dir = self.root / "gateway"
        (gw_dir / "policies").mkdir(parents=True)
        (gw_dir / "policies" / "cards.yaml").write_text(POLICY)
        credential = gw_dir / "kms.credential"
        credential.write_text(self.gateway_credential)
        credential.chmod(0o600)
        port, admin = free_port(), free_port()
        config: dict[str, Any] = {
            "listen": {"host": "127.0.0.1", "port": port},
            "admin": {"host": "127.0.0.1", "port": admin},
            "workers": 1,
            "data_dir": "data",
            "reload": {"watch": False},
            "upstreams": {"app": {"url": self.backend.url}},
            "tee": {
                "kms": {"url": self.kms_url, "credential_file": str(credential)},
                "workers": [{"id": t, "address": f"unix:{self.socket(t)}"} for t in tee_ids],
                "reattest_every": "1s",
                "retry_every": "300ms",
                "grant_ttl": 30,
                "insecure_simulated_tee": True,
                "sim_key": str(self.shared / KEY_FILE),
            },
        }
        (gw_dir / "gateway.yaml").write_text(yaml.safe_dump(config))
        self.gateway = start_gateway(gw_dir / "gateway.yaml", port, admin)
        await wait_ready(self.gateway)
        return self.gateway

    # ---- reading what happened ----------------------------------------------

    def audit(self, where: str, event: str) -> list[dict[str, Any]]:
        """Fields of every ``event`` in the audit log under ``where`` (gateway or kms)."""
        base = self.root / ("gateway/data" if where == "gateway" else "kms/data") / "audit"
        out = []
        for f in sorted(base.glob("*")):
            if f.is_file():
                for line in f.read_text().splitlines():
                    entry = json.loads(line)
                    if entry.get("event") == event:
                        out.append(entry["fields"])
        return out

    def released_to(self) -> list[str]:
        """The TEE id of every one-time key the KMS released, in order."""
        return [str(f["tee_id"]) for f in self.audit("kms", "kms.release")]

    def every_file(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file() and not p.is_socket()]

    # ---- life cycle -----------------------------------------------------------

    async def _wait_http(self, url: str, proc: Proc, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if proc.proc.poll() is not None:
                    raise AssertionError(f"{proc.name} exited:\n{proc.text()}")
                try:
                    async with s.get(url) as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{proc.name} did not become ready:\n{proc.text()}")

    async def stop(self) -> None:
        """Stop everything (idempotent): gateway, workers, KMS, backend."""
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for tee_id in list(self.workers):
            self.stop_worker(tee_id)
        if self.kms is not None:
            self.kms.stop()
            self.kms = None
        await self.backend.stop()


def changed_bundle(root: Path) -> Path:
    """A copy of the demo bundle with one byte more: another measurement."""
    copy = root / "changed_bundle"
    shutil.copytree(BUNDLE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "cards.py").open("a") as f:
        f.write("\n# changed after registration\n")
    return copy


async def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> None:
    """Poll ``predicate()`` until it is true (no timing assertion: a deadline only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
