"""Field rules through the gateway over real sockets: tokens in, values out only where allowed.

The backend is a small record store that keeps bodies exactly as received, so
the tests see what an existing app would hold; the gateway runs with its real
vault (SQLite under the data dir, or a private Redis that the test stops).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.proxy.conftest import Gateway, GatewayFactory, write_config
from tests.proxy.session_backend import make_session_backend
from tests.proxy.sessions.servers import RedisProcess, start
from tests.proxy.test_sessions_http import sessions_yaml

SSN = "123-45-6789"
PAN = "4111 1111 1111 1111"
RECORDS = web.AppKey("records", dict[str, dict[str, object]])
RECEIVED = web.AppKey("received", list[dict[str, object]])

ROUTES = """
classes:
  ssn: {format: ssn, keep_last: 4, mask: "***-**-{last4}"}
  pan: {format: pan, keep_last: 4, mask: "**** **** **** {last4}"}
  email: {format: opaque, prefix: eml}
routes:
  - name: login
    match: {methods: [POST], path: /login}
    allow_unauthenticated: true
  - name: records-create
    match: {methods: [POST], path: /records}
    max_body: 4KiB
    auth: {}
    request:
      - {field: $.ssn, action: tokenize, class: ssn}
      - {field: $.card, action: tokenize, class: pan}
      - {field: "query:email", action: tokenize, class: email}
    response: &reveal
      - field: $..ssn
        action: detokenize
        class: ssn
        allow: [{owner: true}, {roles: [support], mfa: true}]
        otherwise: mask
      - field: $..card
        action: detokenize
        class: pan
        allow: {owner: true}
        otherwise: deny
  - name: records-read
    match: {methods: [GET], prefix: /records}
    auth: {}
    response: *reveal
  - name: signup
    match: {methods: [POST], path: /signup}
    allow_unauthenticated: true
    tenant: public
    request:
      - {field: "form:ssn", action: tokenize, class: ssn}
"""


@dataclass
class Env:
    gw: Gateway
    backend: web.Application
    data_dir: Path


def _record_routes(app: web.Application) -> None:
    records: dict[str, dict[str, object]] = {}
    received: list[dict[str, object]] = []
    app[RECORDS] = records
    app[RECEIVED] = received

    async def create(request: web.Request) -> web.Response:
        raw = await request.read()
        received.append(
            {
                "body": raw.decode(),
                "query": request.query_string,
                "digest": request.headers.get("Content-Digest", ""),
                "raw_sha256": hashlib.sha256(raw).digest(),
            }
        )
        body = json.loads(raw)
        rid = str(len(records) + 1)
        records[rid] = {"id": rid, **body}
        return web.json_response(records[rid], status=201)

    async def read_one(request: web.Request) -> web.Response:
        record = records.get(request.match_info["id"])
        if record is None:
            return web.json_response({"error": "not found"}, status=404)
        cache = {"ETag": '"v1"', "Cache-Control": "public, max-age=60"}
        return web.json_response(record, headers=cache)

    async def read_all(request: web.Request) -> web.Response:
        return web.json_response({"items": list(records.values())})

    async def signup(request: web.Request) -> web.Response:
        raw = await request.read()
        received.append({"body": raw.decode(), "type": request.content_type})
        return web.json_response({"ok": True})

    app.router.add_post("/records", create)
    app.router.add_get("/records", read_all)
    app.router.add_get("/records/{id}", read_one)
    app.router.add_post("/signup", signup)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def _env(
    tmp_path: Path, start_gateway: GatewayFactory, extra: str = ""
) -> AsyncIterator[Env]:
    secret = secrets.token_urlsafe(32).encode()
    backend = make_session_backend(secret)
    _record_routes(backend)
    runner, port = await _serve(backend)
    config = write_config(
        tmp_path, f"http://127.0.0.1:{port}", ROUTES, sessions_yaml(tmp_path, secret) + extra
    )
    gw = await start_gateway(config)
    yield Env(gw, backend, tmp_path / "data")
    await runner.cleanup()


@pytest.fixture
async def env(tmp_path: Path, start_gateway: GatewayFactory) -> AsyncIterator[Env]:
    async for e in _env(tmp_path, start_gateway):
        yield e


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(s: aiohttp.ClientSession, env: Env, user: str) -> None:
    async with s.post(
        f"{env.gw.url}/login", json={"user": user}, headers={"Origin": env.gw.url}
    ) as r:
        assert r.status == 200


async def create(
    s: aiohttp.ClientSession, env: Env, body: object, **kw: object
) -> aiohttp.ClientResponse:
    headers = {"Origin": env.gw.url, **kw.pop("headers", {})}  # type: ignore[dict-item]
    async with s.post(f"{env.gw.url}/records", json=body, headers=headers, **kw) as r:  # type: ignore[arg-type]
        await r.read()
        return r


def _audit_lines(env: Env) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for f in sorted((env.data_dir / "audit").glob("*")):
        if f.is_file():
            lines += [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]
    return lines


async def test_backend_holds_tokens_and_the_owner_reads_values(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        r = await create(s, env, {"name": "A", "ssn": SSN, "card": PAN})
        assert r.status == 201
        stored = env.backend[RECORDS]["1"]
        assert stored["ssn"] != SSN
        assert re.fullmatch(r"\d{3}-\d{2}-6789", str(stored["ssn"]))
        assert stored["card"] != PAN
        assert str(stored["card"]).endswith("1111")
        assert stored["name"] == "A"
        async with s.get(f"{env.gw.url}/records/1") as r:
            assert await r.json() == {"id": "1", "name": "A", "ssn": SSN, "card": PAN}
        async with s.get(f"{env.gw.url}/records") as r:
            assert (await r.json())["items"][0]["ssn"] == SSN


async def test_the_creation_answer_is_detokenized_too(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        async with s.post(
            f"{env.gw.url}/records",
            json={"ssn": SSN, "card": PAN},
            headers={"Origin": env.gw.url},
        ) as r:
            assert r.status == 201
            assert await r.json() == {"id": "1", "ssn": SSN, "card": PAN}


async def test_others_see_masks_or_are_denied(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        await create(s, env, {"ssn": SSN})
        await create(s, env, {"ssn": SSN, "card": PAN})
    async with client() as s:
        await login(s, env, "carol")  # support, but without MFA
        async with s.get(f"{env.gw.url}/records/1") as r:
            assert r.status == 200
            assert (await r.json())["ssn"] == "***-**-6789"
        async with s.get(f"{env.gw.url}/records/2") as r:
            assert r.status == 403  # card: otherwise deny
            body = await r.json()
            assert body["error"] == "denied"
            assert PAN not in json.dumps(body)
            assert SSN not in json.dumps(body)
    decisions = [e for e in _audit_lines(env) if e.get("event") == "token.detokenize"]
    assert {d["fields"]["decision"] for d in decisions} == {"allow", "deny"}
    assert not any(SSN in json.dumps(d) or PAN in json.dumps(d) for d in decisions)


async def test_the_signature_covers_the_rewritten_body(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        await create(s, env, {"ssn": SSN})
    got = env.backend[RECEIVED][0]
    assert SSN not in str(got["body"])
    expected = base64.b64encode(got["raw_sha256"]).decode()  # type: ignore[arg-type]
    assert got["digest"] == f"sha-256=:{expected}:"


async def test_query_parameter_is_tokenized(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        r = await create(s, env, {"ssn": SSN}, params={"email": "alice@example.com"})
        assert r.status == 201
    query = str(env.backend[RECEIVED][0]["query"])
    assert "alice" not in query
    assert query.startswith("email=eml_")


async def test_gzip_body_is_decoded_tokenized_and_reencoded(env: Env) -> None:
    raw = gzip.compress(json.dumps({"ssn": SSN}).encode())
    async with client() as s:
        await login(s, env, "alice")
        async with s.post(
            f"{env.gw.url}/records",
            data=raw,
            headers={
                "Origin": env.gw.url,
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        ) as r:
            assert r.status == 201, await r.text()
    body = env.backend[RECEIVED][0]["body"]
    assert SSN not in str(body)


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b'{"ssn": ', "application/json", 400, "bad_request"),
        (b'{"ssn": {"nested": 1}}', "application/json", 400, "bad_field"),
        (b'{"ssn": "1", "ssn": "2"}', "application/json", 400, "bad_request"),
        (b"ssn=123-45-6789", "text/plain", 415, "unsupported_media_type"),
        (b'{"ssn": "' + b"1" * 5000 + b'"}', "application/json", 413, "payload_too_large"),
    ],
)
async def test_bad_bodies_are_refused_before_the_backend(
    env: Env, data: bytes, content_type: str, status: int, code: str
) -> None:
    async with client() as s:
        await login(s, env, "alice")
        async with s.post(
            f"{env.gw.url}/records",
            data=data,
            headers={"Origin": env.gw.url, "Content-Type": content_type},
        ) as r:
            assert r.status == status
            body = await r.json()
            assert body["error"] == code
            assert SSN not in json.dumps(body)
            if code in ("bad_request", "bad_field"):
                assert "request[0] $.ssn" in body["message"]  # names the rule
    assert env.backend[RECEIVED] == []


async def test_a_value_that_does_not_fit_its_format_is_refused(env: Env) -> None:
    async with client() as s:
        await login(s, env, "alice")
        r = await create(s, env, {"ssn": "not an ssn"})
        assert r.status == 400
    assert env.backend[RECEIVED] == []


async def test_unauthenticated_form_route_tokenizes_for_the_route_tenant(env: Env) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{env.gw.url}/signup", data={"ssn": SSN, "name": "x"}, headers={"Origin": env.gw.url}
        ) as r:
            assert r.status == 200
    got = env.backend[RECEIVED][0]
    assert SSN not in str(got["body"])
    assert "name=x" in str(got["body"])


@pytest.fixture
async def redis_vault(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    server = start(tmp_path / "redis", free_port())
    yield server
    server.stop()


async def test_vault_down_fails_closed_both_ways(
    tmp_path: Path, start_gateway: GatewayFactory, redis_vault: RedisProcess
) -> None:
    extra = f"""
vault:
  url: redis://127.0.0.1:{redis_vault.port}/0
  accept_volatile: true
  timeout: 1
"""
    async for env in _env(tmp_path, start_gateway, extra):
        async with client() as s:
            await login(s, env, "alice")
            assert (await create(s, env, {"ssn": SSN})).status == 201
            redis_vault.stop()
            r = await create(s, env, {"ssn": SSN})
            assert r.status == 503
            assert len(env.backend[RECEIVED]) == 1  # the second never reached the backend
            async with s.get(f"{env.gw.url}/records/1") as r:
                assert r.status == 503  # a token is never passed on as if it were the value
                assert (await r.json())["error"] == "vault_unavailable"


async def test_rewritten_answers_are_not_cacheable(env: Env) -> None:
    """A shared cache must never hand one caller's revealed values to another."""
    async with client() as s:
        await login(s, env, "alice")
        await create(s, env, {"ssn": SSN})
        await create(s, env, {"name": "no sensitive field"})
        async with s.get(f"{env.gw.url}/records/1") as r:
            assert (await r.json())["ssn"] == SSN
            assert r.headers["Cache-Control"] == "no-store"
            assert "ETag" not in r.headers
        async with s.get(f"{env.gw.url}/records/2") as r:  # nothing rewritten: untouched
            assert r.headers["Cache-Control"] == "public, max-age=60"
            assert r.headers["ETag"] == '"v1"'
