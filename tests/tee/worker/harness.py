"""Building a worker for tests: a bundle, the sim key under a data dir, the KMS double."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from tee.bundle import load_bundle
from tee.sim import load_or_create_key
from tee.worker.app import build_app
from tee.worker.attester import SimAttester
from tee.worker.kbs import KbsClient
from tee.worker.keys import KeyRing
from tee.worker.service import Worker
from tests.tee.worker.kms_double import KmsDouble

JOBS_SOURCE = """
import threading
import json

GATE = threading.Event()

def upper(values):
    return [v.upper() for v in values]

def boom(values):
    raise ValueError("leaked " + ",".join(values))

def short(values):
    return values[:-1]

def not_str(values):
    return [1 for _ in values]

def hang(values):
    GATE.wait(30)
    return values

JOBS = {"upper": upper, "boom": boom, "short": short, "not_str": not_str, "hang": hang}
"""


def write_bundle(root: Path, source: str = JOBS_SOURCE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text(source)
    return root


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Rig:
    worker: Worker
    kms: KmsDouble
    client: TestClient[Request, Application]
    clock: Clock
    data_dir: Path


@asynccontextmanager
async def kms_and_worker(
    tmp_path: Path,
    *,
    source: str = JOBS_SOURCE,
    job_timeout: float = 30.0,
    grace: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> AsyncIterator[tuple[Worker, KmsDouble]]:
    """A worker (not served) wired to a KMS double on a real loopback port."""
    data_dir = tmp_path / "data"
    bundle = load_bundle(write_bundle(tmp_path / "bundle", source))
    sim = load_or_create_key(data_dir)
    kms = KmsDouble(sim.public_key(), bundle.measurement.hex())
    kms_server = TestServer(kms.app(), host="127.0.0.1")
    await kms_server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            attester = SimAttester(sim, bundle.measurement)
            broker = KbsClient(
                str(kms_server.make_url("/")), tee_id="tee-1", attester=attester, http=http
            )
            worker = Worker(
                tee_id="tee-1",
                bundle=bundle,
                attester=attester,
                broker=broker,
                keys=KeyRing(grace=grace, clock=clock),
                job_timeout=job_timeout,
                now=now,
            )
            try:
                yield worker, kms
            finally:
                worker.close()
    finally:
        await kms_server.close()


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    source: str = JOBS_SOURCE,
    job_timeout: float = 30.0,
    grace: float = 30.0,
    max_body: int = 4 * 1024 * 1024,
    now: Callable[[], float] = time.time,
) -> AsyncIterator[Rig]:
    """A worker app (test client) wired to a KMS double on a real loopback port."""
    clock = Clock()
    async with kms_and_worker(
        tmp_path, source=source, job_timeout=job_timeout, grace=grace, clock=clock, now=now
    ) as (worker, kms):
        client: TestClient[Request, Application] = TestClient(
            TestServer(build_app(worker, max_body=max_body))
        )
        await client.start_server()
        try:
            yield Rig(worker, kms, client, clock, tmp_path / "data")
        finally:
            await client.close()
