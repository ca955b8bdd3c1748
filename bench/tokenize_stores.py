"""The vault backends of the tokenization benchmark: set up before, cleaned up after, always.

- ``sqlite``: the embedded default, a file under each gateway's data dir.
- ``redis``: the given Redis under a fresh ``tokengate-bench-<hex>:vault:``
  prefix, deleted at the end; ``accept_volatile`` only when that server would
  lose records on restart (no ``appendonly yes`` + ``appendfsync always``), which
  the harness reads, never changes.
- ``postgres``: the given database, a fresh ``tg_bench_<hex>`` schema, dropped
  at the end.
- ``s3``: a private ``moto_server`` the harness starts (and stops), a fresh
  bucket, path-style addressing over loopback HTTP, dummy credentials in the
  gateway's environment.

The CPU of a local Redis or PostgreSQL server counts as the benchmark's own
(it works for the gateway), so it is not reported as foreign load.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psycopg
import redis

from bench.procs import BenchError, Servers, free_port
from bench.sessions import drop_keys, redis_session
from bench.tokenize_config import VaultSection

BACKENDS = ("sqlite", "redis", "postgres", "s3")
S3_ENV = (
    ("AWS_ACCESS_KEY_ID", "bench-access-key"),
    ("AWS_SECRET_ACCESS_KEY", "bench-secret-key"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/nonexistent/aws-config"),
)


def fsync_latency_ms(directory: Path, *, count: int = 50) -> tuple[float, float]:
    """Median and worst of ``count`` 4 KiB write + fsync in ``directory``, in ms.

    The floor under any durable commit there: the SQLite vault (WAL,
    ``synchronous=FULL``) fsyncs once per tokenize batch before a token leaves.
    """
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    times: list[float] = []
    try:
        for _ in range(count):
            os.write(fd, b"\0" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times), max(times)


@dataclass
class Prepared:
    """One backend ready to use: its vault section and the server sessions working for it."""

    vault: VaultSection
    server_sessions: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def redis_is_durable(url: str) -> bool:
    """Whether the Redis at ``url`` runs ``appendonly yes`` with ``appendfsync always``."""
    client = redis.Redis.from_url(url)
    try:
        conf = {**client.config_get("appendonly"), **client.config_get("appendfsync")}
    finally:
        client.close()
    return conf.get("appendonly") == "yes" and conf.get("appendfsync") == "always"


def postgres_session(conn: psycopg.Connection[tuple[object, ...]]) -> int | None:
    """Session id of this connection's server process if it runs here, else None."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    try:
        return os.getsid(int(str(row[0]))) if row else None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def prepared(
    backend: str, *, redis_url: str, postgres_url: str, servers: Servers, tag: str
) -> Iterator[Prepared]:
    """Set ``backend`` up under the unique ``tag`` (hex), yield it, clean it up whatever happens."""
    if backend == "sqlite":
        yield Prepared(VaultSection("sqlite:vault/vault.db"))
    elif backend == "redis":
        yield from _redis(redis_url, tag)
    elif backend == "postgres":
        yield from _postgres(postgres_url, tag)
    elif backend == "s3":
        yield from _s3(servers, tag)
    else:
        raise BenchError(f"bench: unknown vault backend {backend!r}")


def _redis(url: str, tag: str) -> Iterator[Prepared]:
    prefix = f"tokengate-bench-{tag}:vault:"
    durable = redis_is_durable(url)
    sid = redis_session(url)
    note = [] if durable else ["redis: no appendonly+always on this server: accept_volatile"]
    try:
        yield Prepared(
            VaultSection(url, prefix=prefix, accept_volatile=not durable),
            [sid] if sid else [],
            note,
        )
    finally:
        drop_keys(url, prefix)


def _postgres(url: str, tag: str) -> Iterator[Prepared]:
    schema = f"tg_bench_{tag}"
    sep = "&" if "?" in url else "?"
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        sid = postgres_session(conn)
        try:
            yield Prepared(VaultSection(f"{url}{sep}schema={schema}"), [sid] if sid else [])
        finally:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _s3(servers: Servers, tag: str) -> Iterator[Prepared]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("moto_server")
    server = servers.start(
        "moto-server",
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        ready=[f"{endpoint}/moto-api/"],
    )
    bucket = f"tg-bench-{tag}"
    try:
        env = dict(S3_ENV)
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        url = f"s3://{bucket}?region=us-east-1&endpoint={endpoint}&addressing=path"
        yield Prepared(VaultSection(url, env=S3_ENV), notes=["s3: moto_server, in memory"])
    finally:
        servers.stop(server)
