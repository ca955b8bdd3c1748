"""tee.registry: entry validation, and the SQLite and PostgreSQL stores on real databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tee.attestation import Platform
from tee.errors import RegistryError, StoreUnavailable
from tee.registry import TeeEntry, TeeRegistry, new_entry, open_registry
from tee.registry_pg import PostgresTeeRegistry
from tee.registry_sqlite import SqliteTeeRegistry

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
M = "ab" * 48


def body(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "worker-1",
        "platform": "sim",
        "measurements": {"measurement": [M]},
        "tenants": ["acme"],
    }
    doc.update(over)
    return doc


# ---- entries (no IO) ----


def test_new_entry_defaults_and_json_round_trip() -> None:
    entry = new_entry(body(jobs=["luhn"]), now=NOW)
    assert entry.platform is Platform.SIM
    assert entry.status == "active"
    assert entry.created_at == int(NOW.timestamp())
    assert entry.retired_at is None
    assert entry.accepted_tcb == ("UpToDate",)
    assert entry.allow_debug is False
    assert TeeEntry.from_json(entry.to_json()) == entry
    assert entry.to_json()["jobs"] == ["luhn"]


def test_policy_carries_measurements_debug_and_tcb() -> None:
    entry = new_entry(
        body(
            measurements={"pcr0": ["AA", "bb"]},
            allow_debug=True,
            accepted_tcb=["UpToDate", "SWHardeningNeeded"],
        ),
        now=NOW,
    )
    policy = entry.policy()
    assert policy.allow_debug is True
    assert policy.accepted_tcb == frozenset({"UpToDate", "SWHardeningNeeded"})
    assert dict(policy.measurements) == {"pcr0": frozenset({"aa", "bb"})}


def test_tenant_and_job_rules() -> None:
    anyjob = new_entry(body(), now=NOW)
    assert anyjob.allows_job("anything")
    assert anyjob.allows_tenant("acme")
    assert not anyjob.allows_tenant("other")
    limited = new_entry(body(jobs=["luhn"]), now=NOW)
    assert limited.allows_job("luhn")
    assert not limited.allows_job("other")


@pytest.mark.parametrize(
    "over",
    [
        {"id": ""},
        {"id": "-x"},
        {"id": "x" * 65},
        {"id": 5},
        {"platform": "sgx2"},
        {"platform": None},
        {"measurements": {}},
        {"measurements": {"measurement": []}},
        {"measurements": {"measurement": ["xyz"]}},
        {"measurements": {"measurement": ["abc"]}},
        {"measurements": {"measurement": "ab"}},
        {"measurements": {"Bad Name": ["ab"]}},
        {"measurements": ["ab"]},
        {"tenants": []},
        {"tenants": "acme"},
        {"tenants": ["acme", "acme"]},
        {"tenants": ["a b"]},
        {"jobs": []},
        {"jobs": [1]},
        {"accepted_tcb": []},
        {"allow_debug": "yes"},
        {"status": "retired"},
        {"created_at": 5},
        {"extra": 1},
    ],
    ids=lambda o: "-".join(f"{k}={str(v)[:12]}" for k, v in o.items()),
)
def test_bad_registrations_are_refused(over: dict[str, object]) -> None:
    with pytest.raises(RegistryError) as info:
        new_entry(body(**over), now=NOW)
    assert info.value.status == 400


def test_retired_copy_is_final() -> None:
    entry = new_entry(body(), now=NOW)
    retired = entry.retired(LATER)
    assert not retired.active
    assert retired.retired_at == int(LATER.timestamp())
    assert retired.retired(NOW) is retired
    with pytest.raises(RegistryError):
        TeeEntry.from_json({**entry.to_json(), "status": "retired"})  # no retired_at


def test_open_registry_refuses_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(RegistryError):
        open_registry("redis://x", data_dir=tmp_path)
    with pytest.raises(RegistryError):
        open_registry("sqlite://host/x.db", data_dir=tmp_path)
    assert isinstance(open_registry("sqlite:reg.db", data_dir=tmp_path), SqliteTeeRegistry)
    assert isinstance(
        open_registry("postgresql://127.0.0.1/x", data_dir=tmp_path), PostgresTeeRegistry
    )


# ---- stores (real SQLite, real PostgreSQL) ----


@pytest.fixture(params=["sqlite", "postgresql"])
async def registry(
    request: pytest.FixtureRequest, tmp_path: Path, pg_schema: tuple[str, str]
) -> AsyncIterator[TeeRegistry]:
    store: TeeRegistry
    if request.param == "sqlite":
        store = open_registry("sqlite:kms/registry.db", data_dir=tmp_path)
    else:
        dsn, schema = pg_schema
        store = open_registry(dsn, data_dir=tmp_path, schema=schema)
    await store.open()
    await store.open()  # idempotent
    try:
        yield store
    finally:
        await store.close()


async def test_register_get_list(registry: TeeRegistry) -> None:
    a = new_entry(body(id="b-worker"), now=NOW)
    b = new_entry(
        body(id="a-worker", platform="nitro", measurements={"pcr0": ["00" * 48]}), now=NOW
    )
    assert await registry.register(a) == a
    assert await registry.register(b) == b
    assert await registry.get("b-worker") == a
    assert await registry.get("nope") is None
    assert [e.id for e in await registry.entries()] == ["a-worker", "b-worker"]


async def test_an_id_is_never_registered_twice(registry: TeeRegistry) -> None:
    entry = new_entry(body(), now=NOW)
    await registry.register(entry)
    with pytest.raises(RegistryError) as info:
        await registry.register(new_entry(body(tenants=["other"]), now=LATER))
    assert (info.value.status, info.value.code) == (409, "tee_exists")
    await registry.retire(entry.id, now=LATER)
    with pytest.raises(RegistryError):
        await registry.register(entry)
    got = await registry.get(entry.id)
    assert got is not None
    assert got.tenants == ("acme",)  # the first registration stands


async def test_retire_is_final_and_idempotent(registry: TeeRegistry) -> None:
    await registry.register(new_entry(body(), now=NOW))
    retired = await registry.retire("worker-1", now=LATER)
    assert retired.status == "retired"
    assert retired.retired_at == int(LATER.timestamp())
    again = await registry.retire("worker-1", now=datetime(2027, 1, 1, tzinfo=UTC))
    assert again.retired_at == int(LATER.timestamp())
    assert await registry.get("worker-1") == retired


async def test_retire_unknown_is_404(registry: TeeRegistry) -> None:
    with pytest.raises(RegistryError) as info:
        await registry.retire("ghost", now=NOW)
    assert (info.value.status, info.value.code) == (404, "unknown_tee")


async def test_concurrent_registrations_of_one_id_store_one(registry: TeeRegistry) -> None:
    entries = [new_entry(body(tenants=[f"t{i}"]), now=NOW) for i in range(6)]
    results = await asyncio.gather(*(registry.register(e) for e in entries), return_exceptions=True)
    assert sum(isinstance(r, TeeEntry) for r in results) == 1
    assert all(isinstance(r, TeeEntry | RegistryError) for r in results)


async def test_two_sqlite_handles_share_one_file(tmp_path: Path) -> None:
    one = open_registry("sqlite:reg.db", data_dir=tmp_path)
    two = open_registry(f"sqlite:{tmp_path / 'reg.db'}", data_dir=Path("/nonexistent"))
    await one.open()
    await two.open()
    try:
        await one.register(new_entry(body(), now=NOW))
        await two.retire("worker-1", now=LATER)
        got = await one.get("worker-1")
        assert got is not None
        assert got.status == "retired"
    finally:
        await one.close()
        await two.close()


async def test_postgres_replicas_share_one_schema(
    pg_schema: tuple[str, str], tmp_path: Path
) -> None:
    dsn, schema = pg_schema
    one = PostgresTeeRegistry(dsn, schema=schema)
    two = PostgresTeeRegistry(dsn, schema=schema)
    await asyncio.gather(one.open(), two.open())  # DDL under an advisory lock: no race
    try:
        await one.register(new_entry(body(), now=NOW))
        assert await two.get("worker-1") is not None
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
            ).fetchone()
        assert rows == (1,)
    finally:
        await one.close()
        await two.close()


async def test_closed_or_unreachable_store_fails_closed(tmp_path: Path) -> None:
    store = SqliteTeeRegistry(tmp_path / "r.db")
    with pytest.raises(StoreUnavailable):
        await store.get("x")
    pg = PostgresTeeRegistry("postgresql://postgres@127.0.0.1:1/test", schema="tg_none", timeout=2)
    with pytest.raises(StoreUnavailable) as info:
        await pg.open()
    assert info.value.status == 503


async def test_a_corrupted_row_is_refused_not_trusted(tmp_path: Path) -> None:
    store = SqliteTeeRegistry(tmp_path / "r.db")
    await store.open()
    try:
        await store.register(new_entry(body(), now=NOW))
        import sqlite3

        with sqlite3.connect(tmp_path / "r.db") as conn:
            conn.execute('UPDATE tg_tee_registry SET doc = \'{"id": "worker-1"}\'')
        with pytest.raises(RegistryError):
            await store.get("worker-1")
    finally:
        await store.close()
