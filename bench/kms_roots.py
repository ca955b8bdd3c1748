"""Root backend throughput: ``.venv/bin/python bench/kms_roots.py [--seconds 2] [--max-ops 200]``.

For each root backend (local file root, PKCS#11 on a private SoftHSM2, AWS
KMS on a private moto server) measures operations per second of
create_kwk, open_kwk, destroy_kwk and random(32); for AWS KMS also data keys:
GenerateDataKey uncached and through CachingDataKeys (hits). Prints a table
and writes bench/results/kms_roots-<time>.json.

Read the numbers for what they are: SoftHSM2 is software, and moto is a
Python HTTP server on loopback; a hardware HSM or real AWS KMS (network
round trips, request quotas) will be slower on every remote call. Open and
create are unseal/rotation-time operations; the request path calls none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import boto3
from prometheus_client import CollectorRegistry

from kms_client.aws_kms_root import AwsKmsRootKey
from kms_client.datakey_cache import CachingDataKeys, DataKeyCacheMetrics
from kms_client.local_root import LocalRootKey, LocalRootSpec
from kms_client.pkcs11_root import Pkcs11RootKey
from kms_client.root import RootBackend

REPO = Path(__file__).resolve().parent.parent
PIN = "bench-user-pin"


@dataclass(frozen=True)
class Result:
    backend: str
    operation: str
    ops: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


async def measure(
    backend: str,
    operation: str,
    fn: Callable[[int], Awaitable[object]],
    *,
    seconds: float,
    max_ops: int,
) -> Result:
    """Call ``fn(i)`` sequentially until ``seconds`` pass or ``max_ops`` calls are done."""
    start = time.perf_counter()
    n = 0
    while n < max_ops and time.perf_counter() - start < seconds:
        await fn(n)
        n += 1
    return Result(backend, operation, n, time.perf_counter() - start)


async def bench_root(name: str, r: RootBackend, *, seconds: float, max_ops: int) -> list[Result]:
    """create/open/destroy KWK and random on one opened RootBackend."""
    refs: list[tuple[int, bytes]] = []

    async def create(i: int) -> None:
        version = 1000 + i
        _, ref = await r.create_kwk(version)
        refs.append((version, ref))

    results = [await measure(name, "create_kwk", create, seconds=seconds, max_ops=max_ops)]
    version, ref = refs[0]
    results.append(
        await measure(
            name,
            "open_kwk",
            lambda _: r.open_kwk(version, ref),
            seconds=seconds,
            max_ops=max_ops * 10,
        )
    )
    if await r.random(32) is None:
        results.append(Result(name, "random(32)", 0, 0.0))  # this root has no RNG of its own
    else:
        results.append(
            await measure(
                name, "random(32)", lambda _: r.random(32), seconds=seconds, max_ops=max_ops * 10
            )
        )

    async def destroy(i: int) -> None:
        v, ref_i = refs[i]
        await r.destroy_kwk(v, ref_i)

    results.append(
        await measure(name, "destroy_kwk", destroy, seconds=seconds * 10, max_ops=len(refs))
    )
    return results


async def bench_data_keys(root: AwsKmsRootKey, *, seconds: float, max_ops: int) -> list[Result]:
    """GenerateDataKey directly and through the cache (AWS KMS only)."""
    ctx = {"bench": "kms_roots"}
    cache = CachingDataKeys(
        root, max_uses=1_000_000, metrics=DataKeyCacheMetrics(CollectorRegistry())
    )
    return [
        await measure(
            "aws-kms",
            "generate_data_key",
            lambda _: root.generate_data_key(ctx),
            seconds=seconds,
            max_ops=max_ops * 10,
        ),
        await measure(
            "aws-kms",
            "cached data key",
            lambda _: cache.for_encrypt(ctx, 1024),
            seconds=seconds,
            max_ops=1_000_000,
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def softhsm(base: Path) -> Iterator[str]:
    """A private SoftHSM2 token; yields the pkcs11: URI. Must run before the module loads."""
    tokens = base / "tokens"
    tokens.mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    util = shutil.which("softhsm2-util") or "/usr/bin/softhsm2-util"
    subprocess.run(
        [
            util,
            "--init-token",
            "--free",
            "--label",
            "tg-bench",
            "--pin",
            PIN,
            "--so-pin",
            PIN + "-so",
        ],
        check=True,
        capture_output=True,
    )
    os.environ["TG_BENCH_HSM_PIN"] = PIN
    yield (
        "pkcs11:token=tg-bench;object=tg-bench-root"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-env=TG_BENCH_HSM_PIN"
    )


@contextmanager
def moto_server() -> Iterator[str]:
    """A private moto server on loopback; yields its endpoint."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def run(seconds: float, max_ops: int, base: Path) -> list[Result]:
    """Every backend in turn; each is closed before the next starts."""
    results: list[Result] = []

    local = LocalRootKey(
        LocalRootSpec("env", "TG_BENCH_LOCAL_ROOT", base / "root-kwks.json"),
        environ={"TG_BENCH_LOCAL_ROOT": os.urandom(32).hex()},
    )
    await local.open()
    try:
        results += await bench_root("local", local, seconds=seconds, max_ops=max_ops)
    finally:
        await local.close()

    with softhsm(base / "softhsm") as uri:
        for mechanism in ("aes-gcm", "aes-key-wrap-pad"):
            root = Pkcs11RootKey.from_uri(
                uri.replace("object=tg-bench-root", f"object=tg-bench-{mechanism}")
                + f"&mechanism={mechanism}",
                create_root=True,
            )
            await root.open()
            try:
                results += await bench_root(
                    f"pkcs11 ({mechanism})", root, seconds=seconds, max_ops=max_ops
                )
            finally:
                await root.close()

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true"
    )
    with moto_server() as endpoint:
        client = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint)
        key_id = client.create_key(Description="bench root")["KeyMetadata"]["KeyId"]
        aws = AwsKmsRootKey.from_uri(f"aws-kms://{key_id}?region=us-east-1&endpoint={endpoint}")
        await aws.open()
        try:
            results += await bench_root("aws-kms", aws, seconds=seconds, max_ops=max_ops)
            results += await bench_data_keys(aws, seconds=seconds, max_ops=max_ops)
        finally:
            await aws.close()
    return results


def table(results: list[Result]) -> str:
    rows = [f"{'backend':<28} {'operation':<20} {'ops':>8} {'ops/s':>12}"]
    rows += [
        f"{r.backend:<28} {r.operation:<20} {r.ops:>8} "
        + (f"{r.per_second:>12,.1f}" if r.ops else f"{'n/a':>12}")
        for r in results
    ]
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=2.0, help="time budget per operation")
    p.add_argument("--max-ops", type=int, default=200, help="cap on KWK creations per backend")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-bench-kms-") as tmp:
        results = asyncio.run(run(args.seconds, args.max_ops, Path(tmp)))
    print(table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"kms_roots-{time.strftime('%Y%m%d-%H%M%S')}.json"
    doc = {
        "benchmark": "kms_roots",
        "seconds_per_op": args.seconds,
        "note": "SoftHSM2 and moto are local stand-ins; real HSMs and AWS KMS are slower per call",
        "results": [asdict(r) | {"per_second": round(r.per_second, 1)} for r in results],
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
