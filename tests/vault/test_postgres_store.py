"""PostgresVault: schema on open, durability settings, and a private server frozen or crashed mid-run."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import DATABASE_URL
from tests.vault.certs import make_tls
from tests.vault.servers import Postgres, init_postgres, start_postgres
from tests.vault.store_contract import rec
from vault.errors import VaultConfigError, VaultUnavailable
from vault.postgres_store import PostgresVault, split_schema


@pytest.fixture(scope="module")
def pg_data() -> Iterator[Path]:
    """One initdb per module; each test starts (and may crash) its own server on it."""
    base = Path(tempfile.mkdtemp(prefix="tg-vault-pg-"))
    try:
        init_postgres(base / "data")
        yield base / "data"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private_pg(pg_data: Path) -> Iterator[Postgres]:
    server = start_postgres(pg_data)
    try:
        yield server
    finally:
        server.stop()


async def test_open_creates_schema_and_table_once(unique_prefix: str) -> None:
    store = PostgresVault(DATABASE_URL, schema=unique_prefix)
    try:
        await store.open()
        await store.open()  # idempotent
        assert await store.put_new([rec(1)]) == [True]
        with psycopg.connect(DATABASE_URL) as conn:
            row = conn.execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema = %s AND table_name = 'tokengate_vault'",
                (unique_prefix,),
            ).fetchone()
            assert row == (1,)
    finally:
        await store.close()
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{unique_prefix}" CASCADE')


@pytest.mark.parametrize(
    ("options", "durable", "detail"),
    [
        ("", True, "fsync on, synchronous_commit on"),
        ("options=-c%20synchronous_commit%3Doff", False, "synchronous_commit is off"),
    ],
)
async def test_durability_reads_the_server_settings(
    pg_schema: tuple[str, str], options: str, durable: bool, detail: str
) -> None:
    url, schema = pg_schema
    store = PostgresVault(f"{url}?{options}" if options else url, schema=schema)
    await store.open()
    report = await store.durability()
    assert report.durable is durable
    assert detail in report.detail
    await store.close()


async def test_a_frozen_server_fails_closed_within_the_timeout(
    private_pg: Postgres, unique_prefix: str
) -> None:
    store = PostgresVault(private_pg.url, schema=unique_prefix, timeout=0.5)
    await store.open()
    committed = [rec(n) for n in range(10)]
    assert await store.put_new(committed) == [True] * 10
    batch = [rec(n) for n in range(100, 200)]
    private_pg.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(VaultUnavailable, match="put_new timed out"):
            await store.put_new(batch)
        with pytest.raises(VaultUnavailable, match="get_many timed out"):
            await store.get_many([committed[0].id])
        assert time.monotonic() - started < 3.0
    finally:
        private_pg.thaw()
    assert len(await store.get_many([r.id for r in batch])) in (0, len(batch))
    assert len(await store.get_many([r.id for r in committed])) == 10
    await store.close()


async def test_a_crash_mid_batch_leaves_all_or_nothing(pg_data: Path, unique_prefix: str) -> None:
    server = start_postgres(pg_data)
    try:
        store = PostgresVault(server.url, schema=unique_prefix, timeout=10.0)
        await store.open()
        committed = [rec(n) for n in range(10)]
        assert await store.put_new(committed) == [True] * 10
        batch = [rec(n) for n in range(1000, 61_000)]
        task = asyncio.create_task(store.put_new(batch))
        await asyncio.sleep(0.3)  # the statement is on its way or running
        server.stop()  # immediate shutdown: like a crash, no clean commit
        try:
            flags = await task
        except VaultUnavailable:
            flags = None
        started = time.monotonic()
        with pytest.raises(VaultUnavailable):
            await store.get_many([committed[0].id])
        assert time.monotonic() - started < 5.0  # answered while down, no hang
        server = start_postgres(pg_data, server.port)
        found = await store.get_many([r.id for r in batch])
        assert len(found) in (0, len(batch))
        if flags is not None:  # it reported success: then every record must be there
            assert len(found) == len(batch)
        assert len(await store.get_many([r.id for r in committed])) == 10
        await store.close()
    finally:
        server.stop()


async def test_a_stopped_server_fails_closed_at_once(private_pg: Postgres) -> None:
    store = PostgresVault(private_pg.url, schema="vault_stop", timeout=2.0)
    await store.open()
    private_pg.stop()
    started = time.monotonic()
    with pytest.raises(VaultUnavailable, match="postgresql: put_new failed"):
        await store.put_new([rec(1)])
    assert time.monotonic() - started < 2.5
    await store.close()


def test_split_schema_strips_only_the_schema_parameter() -> None:
    url, schema = split_schema(
        "postgresql://u:pw@db.internal:5432/app?sslmode=verify-full&schema=vault&sslrootcert=/ca"
    )
    assert schema == "vault"
    assert url == "postgresql://u:pw@db.internal:5432/app?sslmode=verify-full&sslrootcert=%2Fca"
    assert split_schema("postgres://h/db") == ("postgres://h/db", "public")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://h/db?schema=a&schema=b",
        "postgresql://h/db?schema=bad-name",
        "postgresql://h/db?schema=x;drop",
        "mysql://h/db",
    ],
)
def test_split_schema_refuses_bad_urls(url: str) -> None:
    with pytest.raises(VaultConfigError):
        split_schema(url)


async def test_verify_full_tls_connects_only_to_the_trusted_server(pg_data: Path) -> None:
    tls = make_tls(pg_data.parent / "tls")
    other = make_tls(pg_data.parent / "other-tls")
    server = start_postgres(pg_data, tls=tls)
    try:
        good = PostgresVault(
            f"{server.url}?sslmode=verify-full&sslrootcert={tls.ca}", schema="vault_tls"
        )
        await good.open()
        assert await good.put_new([rec(1)]) == [True]
        await good.close()
        wrong = PostgresVault(
            f"{server.url}?sslmode=verify-full&sslrootcert={other.ca}", schema="vault_tls"
        )
        with pytest.raises(VaultUnavailable, match="open failed"):
            await wrong.open()
        await wrong.close()
    finally:
        server.stop()
