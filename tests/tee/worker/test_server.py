"""tee.worker.server: loopback TCP and unix sockets, clean stop, non-loopback refused."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from tee.address import WorkerAddress
from tee.worker.server import serve
from tee.worker.service import Worker
from tests.tee.worker.harness import kms_and_worker
from tokengate.errors import ConfigError


@asynccontextmanager
async def served(worker: Worker, address: WorkerAddress, **kw: object) -> AsyncIterator[str]:
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(worker, address, stop, on_ready=ready.set_result, **kw),  # type: ignore[arg-type]
        name="test-worker",
    )
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "w.sock"
    async with kms_and_worker(tmp_path) as (worker, _):
        async with served(worker, WorkerAddress(unix=sock)) as listening:
            assert listening == f"unix:{sock}"
            assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
            conn = aiohttp.UnixConnector(path=str(sock))
            async with aiohttp.ClientSession(connector=conn) as http:
                async with http.get("http://worker/v1/info") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["tee_id"] == "tee-1"
        assert not sock.exists()


async def test_tcp_port_zero_reports_the_bound_port(tmp_path: Path) -> None:
    async with kms_and_worker(tmp_path) as (worker, _):
        async with served(worker, WorkerAddress(host="127.0.0.1", port=0)) as listening:
            host, port = listening.rsplit(":", 1)
            assert host == "127.0.0.1"
            assert int(port) > 0
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{listening}/v1/info") as resp:
                    assert resp.status == 200


async def test_non_loopback_is_refused_unless_insecure(tmp_path: Path) -> None:
    async with kms_and_worker(tmp_path) as (worker, _):
        with pytest.raises(ConfigError, match="non-loopback"):
            await serve(worker, WorkerAddress(host="0.0.0.0", port=0), asyncio.Event())
        async with served(
            worker, WorkerAddress(host="0.0.0.0", port=0), insecure_non_loopback=True
        ) as listening:
            assert listening.startswith("0.0.0.0:")
