"""Helpers for the KMS service tests: the real service on a free port, a clock, sim workers."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kms.auth import credential_digest, new_credential
from kms.config import load_kms_config
from kms.runner import open_service, server_tls
from tee import sim
from tee.binding import report_data
from tee.wire import b64d, b64e
from tests.conftest import free_port

MEASUREMENT = "ab" * 48
START = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Reply:
    """One HTTP answer: status and JSON body."""

    status: int
    body: dict[str, Any]


@dataclass
class Kms:
    """A running KMS service and the credentials that reach it."""

    url: str
    data_dir: Path
    clock: Clock
    session: aiohttp.ClientSession
    admin: str = field(repr=False)
    gateway: str = field(repr=False)
    both: str = field(repr=False)

    async def call(
        self, method: str, path: str, body: object = None, *, token: str | None = None
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, self.url + path, data=data, headers=headers
        ) as resp:
            return Reply(resp.status, await resp.json())

    async def register(self, tee_id: str = "w1", **over: object) -> Reply:
        doc: dict[str, object] = {
            "id": tee_id,
            "platform": "sim",
            "measurements": {"measurement": [MEASUREMENT]},
            "tenants": ["acme"],
            "jobs": ["luhn"],
        }
        doc.update(over)
        return await self.call("POST", "/v1/tees", doc, token=self.admin)

    def audit_text(self) -> str:
        """Every audit entry written so far (all files of the log directory)."""
        return "".join(p.read_text() for p in sorted((self.data_dir / "audit").glob("*.jsonl")))

    def audit_events(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in self.audit_text().splitlines():
            entry = json.loads(line)
            if entry.get("event") == event:
                out.append(entry)
        return out


class SimWorker:
    """A simulated worker: an X25519 key pair and evidence signed with the development key."""

    def __init__(self, kms: Kms, tee_id: str = "w1", measurement: str = MEASUREMENT) -> None:
        self.kms = kms
        self.tee_id = tee_id
        self.measurement = measurement
        self.private = X25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def evidence(
        self, nonce: bytes, *, public_key: bytes | None = None, debug: bool = False
    ) -> bytes:
        key = self.public if public_key is None else public_key
        report = sim.SimReport(
            measurement=bytes.fromhex(self.measurement),
            report_data=report_data(nonce, key),
            public_key=key,
            nonce=nonce,
            debug=debug,
        )
        signer = sim.load_or_create_key(self.kms.data_dir)
        return sim.sign_evidence(signer, report, now=self.kms.clock.now)

    async def challenge(self) -> bytes:
        reply = await self.kms.call("POST", "/v1/broker/challenge", {"tee_id": self.tee_id})
        assert reply.status == 200, reply
        return b64d(reply.body["nonce"])

    async def attest(self, nonce: bytes | None = None, evidence: bytes | None = None) -> Reply:
        nonce = await self.challenge() if nonce is None else nonce
        body = {
            "tee_id": self.tee_id,
            "nonce": b64e(nonce),
            "public_key": b64e(self.public),
            "evidence": b64e(self.evidence(nonce) if evidence is None else evidence),
        }
        return await self.kms.call("POST", "/v1/broker/attest", body)

    async def session(self) -> str:
        reply = await self.attest()
        assert reply.status == 200, reply
        return str(reply.body["session"])


def grant_body(worker: SimWorker, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "tee_id": worker.tee_id,
        "worker_key": b64e(worker.public),
        "job": "luhn",
        "tenant": "acme",
        "request_id": "req-1",
    }
    body.update(over)
    return body


def release_body(grant_id: object, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "grant_id": grant_id,
        "job": "luhn",
        "tenant": "acme",
        "request_id": "req-1",
    }
    body.update(over)
    return body


def write_config(
    tmp: Path, *, store: str | None = None, schema: str | None = None, **over: object
) -> tuple[Path, dict[str, str]]:
    """kms.yaml and its credentials file under ``tmp``; the secrets by name."""
    secrets = {"admin": new_credential(), "gateway": new_credential(), "both": new_credential()}
    creds = {
        "credentials": [
            {"id": "admin-1", "roles": ["admin"], "sha256": credential_digest(secrets["admin"])},
            {"id": "gw-1", "roles": ["gateway"], "sha256": credential_digest(secrets["gateway"])},
            {
                "id": "ops-1",
                "roles": ["admin", "gateway"],
                "sha256": credential_digest(secrets["both"]),
            },
        ]
    }
    (tmp / "creds.yaml").write_text(yaml.safe_dump(creds))
    listen = {"host": "127.0.0.1", "port": free_port()}
    extra = over.pop("listen", None)
    if isinstance(extra, dict):
        listen.update(extra)
    doc: dict[str, object] = {
        "data_dir": "data",
        "listen": listen,
        "credentials": "creds.yaml",
        "insecure_simulated_tee": True,
        "audit": {"checkpoint_every": 5},
    }
    if store is not None:
        doc["store"] = store
    if schema is not None:
        doc["store_schema"] = schema
    doc.update(over)
    path = tmp / "kms.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, secrets


@asynccontextmanager
async def running_kms(
    tmp: Path,
    *,
    store: str | None = None,
    schema: str | None = None,
    client_ssl: ssl.SSLContext | None = None,
    **over: object,
) -> AsyncIterator[Kms]:
    """The real KMS service (open_service) on a free port, stopped afterwards.

    With ``listen: {tls: ...}`` in ``over`` it serves HTTPS (kms.runner.server_tls) and the
    test's own client session uses ``client_ssl``.
    """
    path, secrets = write_config(tmp, store=store, schema=schema, **over)
    settings = load_kms_config(path)
    tls = settings.config.listen.tls
    context = server_tls(tls, settings) if tls is not None else None
    clock = Clock()
    async with open_service(settings, now=clock) as app:
        runner = web.AppRunner(app)
        await runner.setup()
        port = settings.config.listen.port
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
        await site.start()
        scheme = "https" if context is not None else "http"
        try:
            connector = aiohttp.TCPConnector(ssl=client_ssl if client_ssl is not None else True)
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30), connector=connector
            ) as session:
                yield Kms(
                    f"{scheme}://127.0.0.1:{port}",
                    settings.data_dir,
                    clock,
                    session,
                    admin=secrets["admin"],
                    gateway=secrets["gateway"],
                    both=secrets["both"],
                )
        finally:
            await runner.cleanup()
