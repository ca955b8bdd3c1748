"""tee.worker_client against a real worker served on a unix socket and on TCP."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tee.address import WorkerAddress
from tee.envelope import Binding, open_response, seal
from tee.errors import JobRefused, WorkerError, WorkerRefusal
from tee.worker_client import WorkerClient
from tests.tee.worker.harness import kms_and_worker
from tests.tee.worker.test_server import served


async def test_info_attest_and_a_job_over_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "w.sock"
    async with kms_and_worker(tmp_path) as (worker, kms):
        async with served(worker, WorkerAddress(unix=sock)), WorkerClient(f"unix:{sock}") as client:
            info = await client.info()
            assert (info.tee_id, info.platform, info.generation) == ("tee-1", "sim", 0)
            assert info.measurement == worker.bundle.measurement.hex()
            assert "upper" in info.jobs
            answer = await client.attest(os.urandom(32))
            assert answer.generation == 1
            assert answer.public_key != info.public_key
            assert answer.evidence
            assert "evidence" not in repr(answer)
            grant = kms.grant(worker_key=answer.public_key, job="upper")
            sealed = seal(grant.binding, grant.key, ["a", "b"])
            response = await client.run_job("upper", sealed.envelope)
            assert open_response(grant.binding, sealed.response_key, response) == ["A", "B"]


async def test_refusals_keep_the_workers_status_and_code(tmp_path: Path) -> None:
    async with kms_and_worker(tmp_path) as (worker, kms):
        async with served(worker, WorkerAddress(host="127.0.0.1", port=0)) as listening:
            async with WorkerClient(listening) as client:
                answer = await client.attest(os.urandom(32))
                grant = kms.grant(worker_key=answer.public_key, job="upper")
                b = grant.binding
                stale = Binding(
                    b.tee_id, b"\1" * 32, b.job, b.tenant, b.request_id, b.grant_id, b.expires_at
                )
                with pytest.raises(JobRefused) as e:
                    await client.run_job("upper", seal(stale, grant.key, ["a"]).envelope)
                assert (e.value.status, e.value.code) == (410, "stale_key")
                kms.retired = True
                with pytest.raises(WorkerRefusal) as r:
                    await client.attest(os.urandom(32))
                assert (r.value.status, r.value.code) == (403, "kms_refused")


async def test_an_unreachable_worker_is_a_worker_error(tmp_path: Path, unused_port: int) -> None:
    async with WorkerClient(f"unix:{tmp_path / 'absent.sock'}") as client:
        with pytest.raises(WorkerError, match="unreachable"):
            await client.info()
    async with WorkerClient(f"127.0.0.1:{unused_port}") as client:
        with pytest.raises(WorkerError, match="unreachable"):
            await client.attest(os.urandom(32))


def impostor(status: int, body: bytes, *, hang: bool = False) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        if hang:
            await asyncio.Event().wait()  # never set: the client's timeout must end the call
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"not json"),
        (200, b"[]"),
        (200, b'{"tee_id": 1}'),
        (
            200,
            b'{"tee_id": "t", "platform": "sim", "measurement": "00", "jobs": "x", "public_key": "AA", "generation": 0}',
        ),
        (
            200,
            b'{"tee_id": "t", "platform": "sim", "measurement": "00", "jobs": [], "public_key": "A=", "generation": 0}',
        ),
        (
            200,
            b'{"tee_id": "t", "platform": "sim", "measurement": "00", "jobs": [], "public_key": "AA", "generation": true}',
        ),
        (500, b'{"error": "internal_error"}'),
        (400, b'{"message": "no code"}'),
        (302, b"{}"),
    ],
    ids=[
        "not-json",
        "list",
        "missing",
        "jobs-str",
        "bad-b64",
        "bool-generation",
        "5xx",
        "no-code",
        "redirect",
    ],
)
async def test_answers_outside_the_protocol_are_worker_errors(status: int, body: bytes) -> None:
    server = TestServer(impostor(status, body), host="127.0.0.1")
    await server.start_server()
    try:
        async with WorkerClient(f"127.0.0.1:{server.port}") as client:
            with pytest.raises(WorkerError):
                await client.info()
    finally:
        await server.close()


async def test_a_worker_that_never_answers_times_out() -> None:
    server = TestServer(impostor(200, b"{}", hang=True), host="127.0.0.1")
    await server.start_server()
    try:
        async with WorkerClient(f"127.0.0.1:{server.port}", timeout=0.3) as client:
            with pytest.raises(WorkerError, match="TimeoutError"):
                await client.run_job("upper", {})
    finally:
        await server.close()


def test_arguments_are_checked() -> None:
    client = WorkerClient("127.0.0.1:1")
    with pytest.raises(ValueError, match="nonce"):
        asyncio.run(client.attest(b"short"))
    with pytest.raises(ValueError, match="slash"):
        asyncio.run(client.run_job("a/b", {}))
