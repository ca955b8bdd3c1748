"""Two real processes on one store: a revoke through one is refused by the other at once.

Runs on every store several processes can share: one SQLite file, the shared
Redis, a private Sentinel group and a private Redis Cluster.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.proxy.sessions.conftest import T0, Stores

REPO = Path(__file__).resolve().parents[3]


class Peer:
    """One ``tests.proxy.sessions.peer`` process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def send(self, op: str, **args: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()

    async def receive(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 20)
        assert line, "peer exited"
        answer: dict[str, object] = json.loads(line)
        return answer

    async def ask(self, op: str, **args: object) -> dict[str, object]:
        await self.send(op, **args)
        return await self.receive()


@asynccontextmanager
async def peers(stores: Stores, count: int = 2) -> AsyncIterator[list[Peer]]:
    started: list[Peer] = []
    try:
        for _ in range(count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.proxy.sessions.peer",
                stores.uri, str(stores.data_dir), stores.prefix,
                cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            started.append(Peer(proc))
        for p in started:
            assert await p.receive() == {"ready": True}
        yield started
    finally:
        for p in started:
            if p.proc.stdin is not None:
                p.proc.stdin.close()
            try:
                await asyncio.wait_for(p.proc.wait(), 10)
            except TimeoutError:
                p.proc.kill()
                await p.proc.wait()


async def test_two_processes_share_revocations_and_refresh(shared_stores: Stores) -> None:
    """One pair of processes per backend (starting one costs a second): revoke, then refresh."""
    async with peers(shared_stores) as (a, b):
        await revocations_are_seen_at_once(a, b)
        await concurrent_refresh_rotates_once(a, b)


async def revocations_are_seen_at_once(a: Peer, b: Peer) -> None:
    sids = {}
    for sub in ("alice", "bob", "carol"):
        sids[sub] = (await a.ask("create", sub=sub, now=T0))["sid"]

    async def revoked(sub: str, at: float) -> object:
        return (await b.ask("is_revoked", sid=sids[sub], sub=sub, now=at))["revoked"]

    for sub in sids:
        assert await revoked(sub, T0 + 1) is False
    assert (await a.ask("revoke", sid=sids["alice"], now=T0 + 2))["done"] is True
    assert await revoked("alice", T0 + 2) is True  # the very next check in the other process
    assert await revoked("bob", T0 + 2) is False
    assert (await a.ask("revoke_user", sub="bob", now=T0 + 3))["done"] == 1
    assert await revoked("bob", T0 + 3) is True
    assert await revoked("carol", T0 + 3) is False
    await a.ask("revoke_all", now=T0 + 4)
    assert await revoked("carol", T0 + 4) is True


async def concurrent_refresh_rotates_once(a: Peer, b: Peer) -> None:
    first = token = (await a.ask("create", sub="dave", now=T0 + 10))["token"]
    for rounds in range(3):
        now = T0 + 100 * (rounds + 1)
        await a.send("rotate", token=token, now=now)
        await b.send("rotate", token=token, now=now)
        answers = [await a.receive(), await b.receive()]
        assert sorted(str(x["outcome"]) for x in answers) == ["grace", "rotated"]
        (winner,) = [x for x in answers if x["outcome"] == "rotated"]
        token = winner["token"]
    assert (await b.ask("rotate", token=token, now=T0 + 1000))["outcome"] == "rotated"
    assert (await a.ask("rotate", token=first, now=T0 + 1001)) == {
        "rejected": "RefreshReuseDetected"
    }
