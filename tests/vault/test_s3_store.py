"""S3Vault against moto_server over HTTP: private servers killed or frozen, bounded concurrency, URIs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.vault.certs import make_tls
from tests.vault.conftest import Clock, make_bucket, s3_url
from tests.vault.servers import Moto, start_moto
from tests.vault.store_contract import rec
from vault.errors import VaultConfigError, VaultUnavailable
from vault.s3_store import S3Vault
from vault.s3_uri import parse_s3_uri
from vault.store_blob import pack

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def private_moto() -> Iterator[Moto]:
    server = start_moto()
    yield server
    if server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


def vault_on(server: Moto, bucket: str, **options: int | float) -> S3Vault:
    timeout = float(options.pop("timeout", 5.0))
    concurrency = int(options.pop("max_concurrency", 16))
    target = parse_s3_uri(s3_url(server.endpoint, bucket))
    return S3Vault(target, timeout=timeout, max_concurrency=concurrency)


async def test_a_killed_server_fails_closed_at_once(private_moto: Moto) -> None:
    store = vault_on(private_moto, make_bucket(private_moto.endpoint), timeout=1.0)
    await store.open()
    assert await store.put_new([rec(1)]) == [True]
    private_moto.proc.send_signal(signal.SIGKILL)
    private_moto.proc.wait(10)
    started = time.monotonic()
    with pytest.raises(VaultUnavailable, match="EndpointConnectionError"):
        await store.put_new([rec(n) for n in range(2, 40)])
    with pytest.raises(VaultUnavailable, match="get_many failed"):
        await store.get_many([rec(1).id])
    assert time.monotonic() - started < 3.0
    await store.close()


async def test_a_frozen_server_fails_closed_and_nothing_is_half_written(
    private_moto: Moto,
) -> None:
    bucket = make_bucket(private_moto.endpoint)
    store = vault_on(private_moto, bucket, timeout=0.5)
    await store.open()
    batch = [rec(n) for n in range(100, 140)]
    os.kill(private_moto.proc.pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        with pytest.raises(VaultUnavailable, match=r"ReadTimeoutError|timed out"):
            await store.put_new(batch)
        assert time.monotonic() - started < 3.0
    finally:
        os.kill(private_moto.proc.pid, signal.SIGCONT)
    await store.close()
    # Each object is whole or absent: S3 has no partial objects, and no batch atomicity.
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=private_moto.endpoint)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    by_key = {f"tokengate/vault/{r.id.hex()}": r for r in batch}
    for obj in listed:
        body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        assert body == pack(by_key[obj["Key"]])
    client.close()


async def test_requests_run_concurrently_but_bounded(moto: Moto) -> None:
    store = vault_on(moto, make_bucket(moto.endpoint), max_concurrency=3)
    await store.open()
    records = [rec(n) for n in range(30)]
    await store.put_new(records)
    lock = threading.Lock()
    in_flight = peak = 0

    def before(**_: object) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.01)  # widen the window so overlaps show

    def after(**_: object) -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    events = store._client.meta.events  # type: ignore[union-attr]  # instrumentation only
    events.register("before-call.s3.GetObject", before)
    events.register("after-call.s3.GetObject", after)
    assert len(await store.get_many([r.id for r in records])) == 30
    assert 2 <= peak <= 3
    await store.close()


async def test_expiry_is_in_the_object_metadata(moto: Moto, clock: Clock) -> None:
    bucket = make_bucket(moto.endpoint)
    store = vault_on(moto, bucket)
    await store.open()
    expires = int(clock()) + 600
    await store.put_new([rec(1, expires=expires), rec(2)])
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint)
    head = client.head_object(Bucket=bucket, Key=f"tokengate/vault/{rec(1).id.hex()}")
    assert head["Metadata"] == {"tg-expires": str(expires)}
    head = client.head_object(Bucket=bucket, Key=f"tokengate/vault/{rec(2).id.hex()}")
    assert head["Metadata"] == {"tg-expires": "-"}
    client.close()
    await store.close()


async def test_scan_skips_foreign_objects(moto: Moto) -> None:
    bucket = make_bucket(moto.endpoint)
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint)
    client.put_object(Bucket=bucket, Key="tokengate/vault/README", Body=b"x")
    client.put_object(Bucket=bucket, Key="elsewhere/00", Body=b"x")
    client.close()
    store = vault_on(moto, bucket)
    await store.open()
    await store.put_new([rec(1), rec(2)])
    assert [r.id for r in await store.scan(after=None, limit=10)] == [rec(1).id, rec(2).id]
    await store.close()


async def test_a_missing_bucket_is_a_config_error(moto: Moto) -> None:
    store = vault_on(moto, "tg-vault-no-such-bucket")
    with pytest.raises(VaultConfigError, match="bucket tg-vault-no-such-bucket"):
        await store.open()


async def test_missing_credentials_are_a_config_error(
    moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket(moto.endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = vault_on(moto, bucket)
    with pytest.raises(VaultConfigError, match="NoCredentialsError"):
        await store.open()


def test_uri_parsing() -> None:
    target = parse_s3_uri(
        "s3://my-vault?region=eu-west-1&endpoint=https://s3.internal:9000&ca-bundle=/ca.pem"
        "&max-attempts=3"
    )
    assert target.bucket == "my-vault"
    assert target.region == "eu-west-1"
    assert target.endpoint == "https://s3.internal:9000"
    assert target.addressing == "path"  # custom endpoints are usually path-style
    assert target.ca_bundle == "/ca.pem"
    assert target.max_attempts == 3
    assert parse_s3_uri("s3://my-vault?region=us-east-1").addressing == "virtual"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://my-vault", "needs region"),
        ("s3://my-vault/some/prefix?region=us-east-1", "bucket only"),
        ("s3://My_Vault?region=us-east-1", "bucket name"),
        ("s3://my-vault?region=us-east-1&acl=public", "not supported"),
        ("s3://my-vault?region=us-east-1&region=eu-west-1", "given twice"),
        ("s3://my-vault?region=us-east-1&endpoint=ftp://h", "http\\(s\\) URL"),
        ("s3://my-vault?region=us-east-1&max-attempts=0", "1..10"),
        ("s3://my-vault?region=us-east-1&addressing=dns", "path or virtual"),
        ("s3://?region=us-east-1", "needs a bucket"),
    ],
)
def test_bad_uris_are_refused(uri: str, problem: str) -> None:
    with pytest.raises(VaultConfigError, match=problem):
        parse_s3_uri(uri)


async def test_https_endpoints_are_verified_against_the_ca_bundle(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    server = start_moto(tls)
    try:
        client = boto3.client(
            "s3", region_name="us-east-1", endpoint_url=server.endpoint, verify=str(tls.ca)
        )
        client.create_bucket(Bucket="tg-vault-tls")
        client.close()
        base = f"s3://tg-vault-tls?region=us-east-1&endpoint={server.endpoint}&max-attempts=1"
        good = S3Vault(parse_s3_uri(f"{base}&ca-bundle={tls.ca}"))
        await good.open()
        assert await good.put_new([rec(1)]) == [True]
        await good.close()
        untrusted = S3Vault(parse_s3_uri(base), timeout=2.0)  # system CAs only
        with pytest.raises(VaultUnavailable, match="SSLError"):
            await untrusted.open()
        await untrusted.close()
    finally:
        server.stop()
