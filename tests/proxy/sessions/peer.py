"""Another gateway process for cross-process tests: a session store driven over stdin/stdout.

Run as ``python -m tests.proxy.sessions.peer <uri> <data_dir> <key_prefix>``. It
opens the store, writes ``{"ready": true}``, then answers one JSON line per
JSON request line (``{"op": ..., ...}``) until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from proxy.sessions.errors import RefreshRejected
from proxy.sessions.factory import open_session_store
from proxy.sessions.model import SessionGrant
from proxy.sessions.store import SessionStore, StoreSettings


async def rotate(store: SessionStore, token: str, now: float) -> dict[str, object]:
    try:
        result = await store.rotate(token, now=now)
    except RefreshRejected as e:
        return {"rejected": type(e).__name__}
    return {"outcome": result.outcome, "token": result.refresh_token}


async def answer(store: SessionStore, req: dict[str, object]) -> dict[str, object]:
    op, now = req["op"], float(req["now"])  # type: ignore[arg-type]
    sid, sub = str(req.get("sid", "")), str(req.get("sub", ""))
    result: dict[str, object] = {"error": f"unknown op {op}"}
    match op:
        case "create":
            new = await store.create(SessionGrant(sub=sub), now=now)
            result = {"sid": new.session.sid, "token": new.refresh_token}
        case "is_revoked":
            result = {"revoked": await store.is_revoked(sid, sub, now, now=now)}
        case "revoke":
            result = {"done": await store.revoke(sid)}
        case "revoke_user":
            result = {"done": await store.revoke_user(sub, now=now)}
        case "revoke_all":
            await store.revoke_all(now=now)
            result = {"done": True}
        case "rotate":
            result = await rotate(store, str(req["token"]), now)
    return result


async def main(uri: str, data_dir: str, prefix: str) -> None:
    settings = StoreSettings(key_prefix=f"{prefix}:", revoke_wait_timeout=0.5)
    store = open_session_store(uri, data_dir=Path(data_dir), workers=2, settings=settings)
    await store.open()
    try:
        sys.stdout.write(json.dumps({"ready": True}) + "\n")
        sys.stdout.flush()
        while line := await asyncio.to_thread(sys.stdin.readline):
            sys.stdout.write(json.dumps(await answer(store, json.loads(line))) + "\n")
            sys.stdout.flush()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
