"""The browser DPoP helper (proxy/static/dpop.js) run in Node's WebCrypto, checked by our verifier.

Node 20 has the same WebCrypto, fetch, Request and Headers as browsers (not
IndexedDB: the scripts use the helper's memory key store). The lead's browser
test covers IndexedDB and a real page.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
from aiohttp import web

from proxy.auth import jose
from proxy.auth.claims import MemoryReplayGuard
from proxy.auth.dpop import DPoPError, DPoPNonceRequired, DPoPNonces, DPoPVerifier
from tests.conftest import free_port

HELPER = Path(__file__).resolve().parents[3] / "proxy" / "static" / "dpop.js"
NODE = shutil.which("node") or "node"
NOW = 1_700_000_000.0
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"

PROOF_SCRIPT = """
const mod = await import(process.argv[2]);
const spec = JSON.parse(process.argv[3]);
const pair = await mod.generateKeyPair();
let exported = true;
try { await crypto.subtle.exportKey("jwk", pair.privateKey); } catch { exported = false; }
const proofs = [];
for (const request of spec) proofs.push(await mod.createProof(pair, request));
console.log(JSON.stringify({
  extractable: pair.privateKey.extractable, exported, jkt: await mod.thumbprint(pair.publicKey), proofs,
}));
"""

FETCH_SCRIPT = """
const mod = await import(process.argv[2]);
const base = process.argv[3];
const other = process.argv[4];
const token = process.argv[5];
const dpopFetch = mod.createDPoPFetch({ store: mod.memoryKeyStore(), origins: [new URL(base).origin], base });
const results = [];
async function record(response) { results.push({ status: response.status, body: await response.json() }); }
await record(await dpopFetch("/api/orders?page=2", {
  method: "POST", body: JSON.stringify({ item: 7 }),
  headers: { "Authorization": `DPoP ${token}`, "Content-Type": "application/json" },
}));
await record(await dpopFetch(new URL("/api/orders", base), { method: "get", headers: { "Authorization": `DPoP ${token}` } }));
await record(await dpopFetch("/always-nonce", { method: "PUT", body: "x" }));
await record(await dpopFetch(`${other}/elsewhere`));
console.log(JSON.stringify(results));
"""


async def _node(script: str, *args: str, tmp_path: Path) -> str:
    path = tmp_path / "script.mjs"
    path.write_text(script)
    proc = await asyncio.create_subprocess_exec(
        NODE,
        str(path),
        HELPER.as_uri(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _syntax_check(source: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        NODE,
        "--input-type=module",
        "--check",
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(proc.communicate(source.encode()), timeout=60)
    assert proc.returncode is not None
    return proc.returncode


async def test_helper_is_valid_module_syntax_and_a_broken_copy_is_not() -> None:
    # `node --check file.js` accepts broken ES modules on Node 20; stdin with an explicit type does not.
    source = HELPER.read_text()
    assert await _syntax_check(source) == 0
    assert (
        await _syntax_check(
            source.replace("export async function createProof(", "export async function (")
        )
        != 0
    )


async def test_helper_has_no_imports_and_a_non_extractable_key() -> None:
    source = HELPER.read_text()
    assert "import " not in source.replace("//   import", "")
    assert "generateKey(ALGORITHM, false" in source


async def test_proofs_from_the_helper_verify(tmp_path: Path) -> None:
    spec = [
        {
            "method": "post",
            "url": "https://app.example/api/orders?page=2#x",
            "accessToken": TOKEN,
            "now": NOW * 1000,
        },
        {
            "method": "GET",
            "url": "https://app.example/",
            "nonce": "server-nonce",
            "now": NOW * 1000,
        },
        {"method": "PATCH", "url": "https://APP.example:443/a", "now": NOW * 1000},
    ]
    out = json.loads(await _node(PROOF_SCRIPT, json.dumps(spec), tmp_path=tmp_path))
    assert out["extractable"] is False
    assert out["exported"] is False
    verifier = DPoPVerifier(replay=MemoryReplayGuard(now=lambda: NOW))
    first, second, third = out["proofs"]
    header = jose.json_object(jose.b64url_decode(first.split(".")[0]))
    assert header["alg"] == "ES256"
    jwk = header["jwk"]
    assert isinstance(jwk, dict)
    assert set(jwk) == {"kty", "crv", "x", "y"}

    got = await verifier.verify(
        first, method="POST", url="https://app.example/api/orders", now=NOW, access_token=TOKEN
    )
    assert got.jkt == out["jkt"]
    second_got = await verifier.verify(second, method="GET", url="https://app.example/", now=NOW)
    assert second_got.nonce == "server-nonce"
    assert (
        await verifier.verify(third, method="PATCH", url="https://app.example/a", now=NOW)
    ).jkt == out["jkt"]

    # deny twins: replay, another URL, another method, another token, stale
    with pytest.raises(DPoPError, match="invalid proof"):
        await verifier.verify(
            first, method="POST", url="https://app.example/api/orders", now=NOW, access_token=TOKEN
        )
    fresh = DPoPVerifier(replay=MemoryReplayGuard(now=lambda: NOW))
    for kwargs in (
        {
            "method": "POST",
            "url": "https://app.example/api/other",
            "access_token": TOKEN,
            "now": NOW,
        },
        {
            "method": "PUT",
            "url": "https://app.example/api/orders",
            "access_token": TOKEN,
            "now": NOW,
        },
        {
            "method": "POST",
            "url": "https://app.example/api/orders",
            "access_token": TOKEN + "x",
            "now": NOW,
        },
        {
            "method": "POST",
            "url": "https://app.example/api/orders",
            "access_token": TOKEN,
            "now": NOW + 61,
        },
    ):
        with pytest.raises(DPoPError):
            await fresh.verify(first, **kwargs)  # type: ignore[arg-type]


async def test_fetch_wrapper_adds_proofs_and_retries_once_with_the_server_nonce(
    tmp_path: Path,
) -> None:
    nonces = DPoPNonces(lambda: [b"n" * 32], time.time)
    verifier = DPoPVerifier(replay=MemoryReplayGuard(now=time.time), nonces=nonces)
    seen: list[tuple[str, str, bool]] = []

    async def handler(request: web.Request) -> web.Response:
        proof = request.headers.get("DPoP")
        seen.append((request.method, request.path, proof is not None))
        if proof is None:
            return web.json_response({"dpop": False})
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("DPoP ") if authorization else None
        url = f"http://{request.host}{request.path}"
        try:
            if request.path == "/always-nonce":
                raise DPoPNonceRequired("test: never satisfied")
            got = await verifier.verify(
                proof,
                method=request.method,
                url=url,
                now=time.time(),
                access_token=token,
                require_nonce=True,
            )
        except DPoPNonceRequired:
            return web.json_response(
                {"error": "use_dpop_nonce"},
                status=401,
                headers={
                    "WWW-Authenticate": 'DPoP error="use_dpop_nonce"',
                    "DPoP-Nonce": nonces.issue(),
                },
            )
        except DPoPError as e:
            return web.json_response({"error": e.reason}, status=401)
        return web.json_response(
            {"jkt": got.jkt, "body": await request.text(), "method": request.method}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        raw = await _node(
            FETCH_SCRIPT,
            f"http://127.0.0.1:{port}",
            f"http://localhost:{port}",
            TOKEN,
            tmp_path=tmp_path,
        )
    finally:
        await runner.cleanup()
    post, get, always, other = json.loads(raw)
    assert post["status"] == 200
    assert post["body"]["body"] == '{"item":7}'  # the body survived the retry
    assert get == {"status": 200, "body": {"jkt": post["body"]["jkt"], "body": "", "method": "GET"}}
    assert always["status"] == 401
    assert other == {"status": 200, "body": {"dpop": False}}
    assert seen == [
        ("POST", "/api/orders", True),  # no nonce yet: use_dpop_nonce
        ("POST", "/api/orders", True),  # retried once with it
        ("GET", "/api/orders", True),  # nonce remembered: one round trip
        ("PUT", "/always-nonce", True),
        ("PUT", "/always-nonce", True),  # one retry only, then the 401 stands
        ("GET", "/elsewhere", False),  # another origin gets no proof
    ]
