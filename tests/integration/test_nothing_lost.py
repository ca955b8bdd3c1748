"""Nothing lost (DESIGN.md principle 3): a token leaves the gateway only after its record is committed.

A real ``tokengate serve`` process (one worker: the serving process itself, the
one holding the vault connection) sits in front of a record backend that runs
in this test process. A batch of concurrent requests, each with several fields
of different token formats, goes through the gateway; the backend reads each
body, keeps it, and, when the ``KILL_AT``-th body carrying tokens has arrived,
sends SIGKILL to the gateway from inside its handler, before any handler has
answered (so no request is past the backend, and the rest are wherever the
kill finds them: parsing, tokenizing, committing, forwarding). The gateway is
restarted on the same config and data dir, and the backend serves back every
body it ever received through a route whose rules detokenize for the owner:
every token must come back as its original value. A token the backend invents
(one character changed: well formed, never issued) must not reveal anything, and another subject must
not see the owner's values (the deny twins).

Variants: the embedded SQLite vault under the data dir, and the vault in a
fresh schema of the shared PostgreSQL (``postgresql://...?schema=``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.conftest import free_port
from tests.integration.process import GatewayProcess, start_gateway, wait_ready
from tests.proxy.conftest import write_config
from tests.proxy.session_backend import make_session_backend
from tests.proxy.test_sessions_http import sessions_yaml

pytestmark = pytest.mark.slow

BATCH = 24  # requests in flight at once
KILL_AT = 10  # the backend kills the gateway when this many tokenized bodies arrived
REDACTED = "[REDACTED]"
FIELDS = ("ssn", "card", "email", "account")
CLASSES = ("ssn", "pan", "email", "account")

ROUTES = """
classes:
  ssn: {format: ssn, keep_last: 4}
  pan: {format: pan, keep_last: 4}
  email: {format: opaque, prefix: eml}
  account: {format: uuid}
routes:
  - name: login
    match: {methods: [POST], path: /login}
    allow_unauthenticated: true
  - name: records-create
    match: {methods: [POST], path: /records}
    auth: {}
    request:
      - {field: $.ssn, action: tokenize, class: ssn}
      - {field: $.card, action: tokenize, class: pan}
      - {field: $.email, action: tokenize, class: email}
      - {field: $.account, action: tokenize, class: account}
  - name: records-read
    match: {methods: [GET], prefix: /records}
    auth: {}
    response:
      - {field: "$.items[*].ssn", action: detokenize, class: ssn, allow: {owner: true}, otherwise: redact}
      - {field: "$.items[*].card", action: detokenize, class: pan, allow: {owner: true}, otherwise: redact}
      - {field: "$.items[*].email", action: detokenize, class: email, allow: {owner: true}, otherwise: redact}
      - {field: "$.items[*].account", action: detokenize, class: account, allow: {owner: true}, otherwise: redact}
"""


def original(n: int) -> dict[str, object]:
    """The plaintext body of request ``n``: valid shapes, distinct per request."""
    return {
        "n": n,
        "ssn": f"{123 + n:03d}-{45 + n:02d}-{6000 + n:04d}",
        "card": f"4000 0012 3456 {7000 + n:04d}",
        "email": f"person{n}@example.com",
        "account": str(uuid.UUID(int=0x5EC2E7 + n, version=4)),
    }


# Where and in which alphabet ``forged`` changes one character of each token:
# inside the random part, so the result is well formed for its class, names
# the same index version, and keeps the last four digits (unique per request,
# so no other issued token of the class can be hit).
_FORGE = {
    "ssn": (5, "0123456789"),
    "card": (6, "0123456789"),
    "email": (-1, "abcdefghijklmnopqrstuvwxyz234567"),
    "account": (1, "0123456789abcdef"),
}


def forged(body: dict[str, object]) -> dict[str, object]:
    """The body with every token changed by one character: tokens the gateway never issued."""
    out = dict(body)
    for name, (at, alphabet) in _FORGE.items():
        token = list(str(body[name]))
        token[at] = alphabet[(alphabet.index(token[at]) + 1) % len(alphabet)]
        out[name] = "".join(token)
    return out


@dataclass
class Recorder:
    """What the backend received, and the trigger that kills the gateway."""

    received: list[dict[str, object]] = field(default_factory=list)
    gateway_pid: int | None = None
    killed: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    answered: int = 0


RECORDER = web.AppKey("recorder", Recorder)


def record_backend(secret: bytes) -> web.Application:
    """The session test backend plus /records, which keeps bodies as received."""
    app = make_session_backend(secret)
    rec = Recorder()
    app[RECORDER] = rec

    async def create(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        rec.received.append(body)
        if len(rec.received) == KILL_AT and rec.gateway_pid is not None:
            # Right after a body carrying new tokens arrived, before any answer.
            os.kill(rec.gateway_pid, signal.SIGKILL)
            rec.killed.set()
        await rec.release.wait()
        rec.answered += 1
        return web.json_response({"ok": True}, status=201)

    async def read_all(request: web.Request) -> web.Response:
        return web.json_response({"items": rec.received})

    async def read_forged(request: web.Request) -> web.Response:
        return web.json_response({"items": [forged(b) for b in rec.received]})

    app.router.add_post("/records", create)
    app.router.add_get("/records", read_all)
    app.router.add_get("/records/forged", read_forged)
    return app


@dataclass
class Env:
    config: Path
    port: int
    admin_port: int
    backend: Recorder
    started: list[GatewayProcess]

    def start(self) -> GatewayProcess:
        gw = start_gateway(self.config, self.port, self.admin_port, workers=1)
        self.started.append(gw)
        return gw


@pytest.fixture(params=["sqlite", "postgresql"])
def vault_yaml(request: pytest.FixtureRequest) -> str:
    """The gateway's vault section: the embedded default, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return ""  # the default: sqlite:vault/vault.db under the data dir
    dsn, schema = request.getfixturevalue("pg_schema")
    return f'vault: {{url: "{dsn}?schema={schema}"}}\n'


@pytest.fixture
async def env(tmp_path: Path, vault_yaml: str) -> AsyncIterator[Env]:
    secret = secrets.token_urlsafe(32).encode()
    app = record_backend(secret)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    backend_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", backend_port).start()
    extra = sessions_yaml(tmp_path, secret) + "reload: {watch: false}\n" + vault_yaml
    config = write_config(tmp_path, f"http://127.0.0.1:{backend_port}", ROUTES, extra)
    doc = yaml.safe_load(config.read_text())
    doc["upstreams"]["backend"]["read_timeout"] = "20s"
    config.write_text(yaml.safe_dump(doc))
    env = Env(config, doc["listen"]["port"], doc["admin"]["port"], app[RECORDER], [])
    try:
        yield env
    finally:
        app[RECORDER].release.set()
        for gw in env.started:
            gw.stop()
        await runner.cleanup()


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=20)
    )


async def login(s: aiohttp.ClientSession, gw: GatewayProcess, user: str) -> None:
    async with s.post(f"{gw.url}/login", json={"user": user}, headers={"Origin": gw.url}) as r:
        assert r.status == 200, await r.text()


async def post_record(s: aiohttp.ClientSession, gw: GatewayProcess, n: int) -> int:
    async with s.post(f"{gw.url}/records", json=original(n), headers={"Origin": gw.url}) as r:
        return r.status


async def read(s: aiohttp.ClientSession, gw: GatewayProcess, path: str) -> list[dict[str, object]]:
    async with s.get(f"{gw.url}{path}") as r:
        assert r.status == 200, await r.text()
        items = (await r.json())["items"]
        assert isinstance(items, list)
        return items


def denials(env: Env) -> list[dict[str, object]]:
    """The detokenize deny decisions in the gateway's audit log."""
    out: list[dict[str, object]] = []
    for path in (env.config.parent / "data" / "audit").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("event") == "token.detokenize" and entry["fields"]["decision"] == "deny":
                out.append(entry["fields"])
    return out


async def kill_mid_batch(env: Env) -> list[dict[str, object]]:
    """Send the batch; the backend kills the gateway mid-way. Returns what the backend received."""
    gw = env.start()
    await wait_ready(gw)
    async with client() as s:
        await login(s, gw, "alice")
        env.backend.gateway_pid = gw.proc.pid
        results = await asyncio.gather(
            *(post_record(s, gw, n) for n in range(BATCH)), return_exceptions=True
        )
    assert env.backend.killed.is_set()
    assert await asyncio.to_thread(gw.proc.wait, 10) == -signal.SIGKILL
    # The kill came before the backend answered anything: no request completed.
    assert env.backend.answered == 0
    assert all(isinstance(r, aiohttp.ClientError) for r in results), results
    received = list(env.backend.received)
    # Bodies already in the backend's socket buffers at the kill are received too.
    assert len(received) >= KILL_AT
    for body in received:  # the backend holds tokens only
        plain = original(int(str(body["n"])))
        assert all(body[f] != plain[f] and isinstance(body[f], str) for f in FIELDS), body
    env.backend.release.set()
    return received


async def test_every_token_the_backend_received_detokenizes_after_kill_9(env: Env) -> None:
    received = await kill_mid_batch(env)
    gw = env.start()  # same config, same data dir
    await wait_ready(gw)
    async with client() as s:
        await login(s, gw, "alice")
        items = await read(s, gw, "/records")
        invented = await read(s, gw, "/records/forged")
    assert len(items) == len(received)
    for item in items:
        assert item == original(int(str(item["n"]))), item
    # The deny twins: tokens never issued reveal nothing, nor do real ones to another subject.
    redacted = [{"n": i["n"], **dict.fromkeys(FIELDS, REDACTED)} for i in received]
    assert invented == redacted
    async with client() as s:
        await login(s, gw, "carol")  # not the owner
        assert await read(s, gw, "/records") == redacted
    # The invented tokens were well formed: looked up and not found, not refused as malformed.
    denied = {(d["subject"], d["field_class"], d["reason"], d["count"]) for d in denials(env)}
    reasons = (("alice", "unknown"), ("carol", "not_owner"))
    assert denied == {(who, c, why, len(received)) for c in CLASSES for who, why in reasons}
    assert gw.stop() == 0
