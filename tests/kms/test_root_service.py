"""RootService on a real KMS keyring and real KWK tables (SQLite file and PostgreSQL schema)."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from kms.root_errors import BadReference, KwkDestroyed, KwkExists, KwkUnknown
from kms.root_service import REFERENCE_LEN, ROOT_PURPOSE, RootService
from kms.root_table import RootKwkTable, open_root_table
from kms_client.errors import Sealed
from kms_client.manager import KeyManager
from tee.errors import RegistryError
from tests.kms.root_support import kms_keys, opened_table
from tests.kms_client.support import RecordingAuditor


@pytest.fixture(params=["sqlite", "postgresql"])
def table_spec(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(URI, schema) of a KWK table: a SQLite file under tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return "sqlite:kms/root-kwks.db", "unused"
    url, schema = request.getfixturevalue("pg_schema")
    return url, schema


@pytest.fixture
async def keys(tmp_path: Path) -> AsyncIterator[KeyManager]:
    manager = await kms_keys(tmp_path)
    yield manager
    await manager.close()


@pytest.fixture
async def table(table_spec: tuple[str, str], tmp_path: Path) -> AsyncIterator[RootKwkTable]:
    uri, schema = table_spec
    async with opened_table(uri, tmp_path, schema) as t:
        yield t


@pytest.fixture
def auditor() -> RecordingAuditor:
    return RecordingAuditor()


@pytest.fixture
def service(table: RootKwkTable, keys: KeyManager, auditor: RecordingAuditor) -> RootService:
    return RootService(table, keys, auditor)


async def test_create_then_open_returns_the_same_kwk(
    service: RootService, auditor: RecordingAuditor
) -> None:
    kwk, ref = await service.create_kwk("gw-a", 1)
    assert len(kwk) == 32
    assert len(ref) == REFERENCE_LEN
    assert kwk not in ref
    assert await service.open_kwk("gw-a", 1, ref) == kwk
    kwk2, ref2 = await service.create_kwk("gw-a", 2)
    assert kwk2 != kwk
    assert await service.open_kwk("gw-a", 2, ref2) == kwk2
    assert auditor.find("kms.root_create", client="gw-a", version=1, result="ok")
    assert auditor.find("kms.root_open", client="gw-a", version=2, result="ok")


async def test_create_of_a_live_version_is_refused(
    service: RootService, auditor: RecordingAuditor
) -> None:
    kwk, ref = await service.create_kwk("gw-a", 1)
    with pytest.raises(KwkExists, match="kwk v1 is live for client 'gw-a'"):
        await service.create_kwk("gw-a", 1)
    assert auditor.find("kms.root_create", version=1, result="refused", reason="exists")
    assert await service.open_kwk("gw-a", 1, ref) == kwk  # the live one is untouched
    _, other = await service.create_kwk("gw-b", 1)  # versions are per client
    assert other != ref


async def test_destroy_makes_the_version_unrecoverable_and_is_idempotent(
    service: RootService, auditor: RecordingAuditor
) -> None:
    _, ref = await service.create_kwk("gw-a", 1)
    await service.destroy_kwk("gw-a", 1, ref)
    with pytest.raises(KwkDestroyed, match="kwk v1 of client 'gw-a' is destroyed"):
        await service.open_kwk("gw-a", 1, ref)
    await service.destroy_kwk("gw-a", 1, ref)
    assert [f["result"] for f in auditor.find("kms.root_destroy")] == ["requested", "ok", "already"]
    assert auditor.find("kms.root_open", result="refused", reason="destroyed")


async def test_a_destroyed_version_can_be_made_again_and_the_old_reference_stays_dead(
    service: RootService,
) -> None:
    _, old = await service.create_kwk("gw-a", 3)
    await service.destroy_kwk("gw-a", 3, old)
    kwk, new = await service.create_kwk("gw-a", 3)
    assert await service.open_kwk("gw-a", 3, new) == kwk
    with pytest.raises(KwkDestroyed):
        await service.open_kwk("gw-a", 3, old)


async def test_destroy_erases_the_table_share_so_reviving_the_row_does_not_help(
    service: RootService, table: RootKwkTable, table_spec: tuple[str, str], tmp_path: Path
) -> None:
    kwk, ref = await service.create_kwk("gw-a", 1)
    kwk_id = ref[1:17]
    await service.destroy_kwk("gw-a", 1, ref)
    row = await table.get("gw-a", kwk_id)
    assert row is not None
    assert (row.state, row.share) == ("destroyed", None)
    _revive(*table_spec, tmp_path, kwk_id)  # someone with write access flips it back
    revived = await table.get("gw-a", kwk_id)
    assert revived is not None
    assert revived.state == "live"
    assert await service.open_kwk("gw-a", 1, ref) != kwk


def _revive(uri: str, schema: str, data_dir: Path, kwk_id: bytes) -> None:
    statement = "UPDATE {t} SET state = 'live', share = {p}, destroyed_at = NULL WHERE kwk_id = {p}"
    share = bytes(32)
    if uri.startswith("sqlite:"):
        with sqlite3.connect(data_dir / "kms" / "root-kwks.db") as db:
            db.execute(statement.format(t="tg_root_kwks", p="?"), (share, kwk_id.hex()))
        return
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(
            statement.format(t=f'"{schema}".tg_root_kwks', p="%s"),
            (share, kwk_id.hex()),
        )


async def test_a_reference_opens_only_for_its_client_and_version(
    service: RootService, auditor: RecordingAuditor
) -> None:
    _, ref = await service.create_kwk("gw-a", 1)
    await service.create_kwk("gw-a", 2)
    with pytest.raises(KwkUnknown, match="no kwk v1 of client 'gw-b'"):
        await service.open_kwk("gw-b", 1, ref)
    with pytest.raises(KwkUnknown):
        await service.open_kwk("gw-a", 2, ref)
    assert len(auditor.find("kms.root_open", result="refused", reason="unknown")) == 2
    await service.destroy_kwk("gw-b", 1, ref)  # names nothing of gw-b: nothing happens
    assert auditor.find("kms.root_destroy", client="gw-b", result="unknown")
    assert len(await service.open_kwk("gw-a", 1, ref)) == 32


async def test_every_flipped_bit_of_the_sealed_half_is_refused(service: RootService) -> None:
    kwk, ref = await service.create_kwk("gw-a", 1)
    for i in range(17, len(ref)):
        bad = bytearray(ref)
        bad[i] ^= 0x01
        with pytest.raises(KwkUnknown):
            await service.open_kwk("gw-a", 1, bytes(bad))
    assert await service.open_kwk("gw-a", 1, ref) == kwk


@pytest.mark.parametrize("mutate", ["format", "kwk_id", "short", "long", "empty"])
async def test_references_of_the_wrong_shape_or_id_are_refused(
    service: RootService, mutate: str
) -> None:
    _, ref = await service.create_kwk("gw-a", 1)
    bad = {
        "format": b"\x02" + ref[1:],
        "kwk_id": ref[:1] + bytes(16) + ref[17:],
        "short": ref[:-1],
        "long": ref + b"\x00",
        "empty": b"",
    }[mutate]
    expected = KwkUnknown if mutate == "kwk_id" else BadReference
    with pytest.raises(expected):
        await service.open_kwk("gw-a", 1, bad)


async def test_a_kwk_whose_create_cannot_be_audited_is_destroyed_again(
    service: RootService, auditor: RecordingAuditor, table: RootKwkTable
) -> None:
    auditor.fail = True
    with pytest.raises(OSError, match="audit sink down"):
        await service.create_kwk("gw-a", 1)
    auditor.fail = False
    kwk, ref = await service.create_kwk("gw-a", 1)  # the unaudited one is not live
    assert await service.open_kwk("gw-a", 1, ref) == kwk


async def test_an_open_that_cannot_be_audited_releases_nothing(
    service: RootService, auditor: RecordingAuditor
) -> None:
    _, ref = await service.create_kwk("gw-a", 1)
    auditor.fail = True
    with pytest.raises(OSError, match="audit sink down"):
        await service.open_kwk("gw-a", 1, ref)


async def test_a_sealed_kms_makes_no_row(
    table: RootKwkTable, keys: KeyManager, auditor: RecordingAuditor
) -> None:
    service = RootService(table, keys, auditor)
    _, ref = await service.create_kwk("gw-a", 1)
    await keys.seal(actor="test")
    with pytest.raises(Sealed):
        await service.create_kwk("gw-a", 2)
    with pytest.raises(Sealed):
        await service.open_kwk("gw-a", 1, ref)
    await keys.unseal(actor="test")
    await service.create_kwk("gw-a", 2)  # v2 was never written while sealed


async def test_two_replicas_creating_one_version_at_once_make_one_kwk(
    table_spec: tuple[str, str], tmp_path: Path, keys: KeyManager, auditor: RecordingAuditor
) -> None:
    uri, schema = table_spec
    async with (
        opened_table(uri, tmp_path, schema) as t1,
        opened_table(uri, tmp_path, schema) as t2,
    ):
        a, b = RootService(t1, keys, auditor), RootService(t2, keys, auditor)
        results = await asyncio.gather(
            *(s.create_kwk("gw-a", 1) for s in (a, b, a, b)), return_exceptions=True
        )
    made = [r for r in results if isinstance(r, tuple)]
    assert len(made) == 1
    assert all(isinstance(r, KwkExists) for r in results if not isinstance(r, tuple))


@pytest.mark.parametrize("n", [1, 32, 1024])
async def test_random_gives_n_fresh_bytes(service: RootService, n: int) -> None:
    a, b = await service.random(n), await service.random(n)
    assert len(a) == len(b) == n
    assert n == 1 or a != b


@pytest.mark.parametrize("n", [0, -1, 1025, True])
async def test_random_refuses_lengths_out_of_bounds(service: RootService, n: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.1024"):
        await service.random(n)


@pytest.mark.parametrize("version", [0, -1, 2**32, True])
async def test_versions_out_of_range_are_refused(service: RootService, version: int) -> None:
    with pytest.raises(ValueError, match="kwk version"):
        await service.create_kwk("gw-a", version)


async def test_no_key_material_reaches_the_audit_log(
    service: RootService, auditor: RecordingAuditor, keys: KeyManager
) -> None:
    kwk, ref = await service.create_kwk("gw-a", 1)
    await service.open_kwk("gw-a", 1, ref)
    await service.destroy_kwk("gw-a", 1, ref)
    dump = auditor.dump()
    for secret in (kwk, ref, ref[17:]):
        for spelling in (secret.hex(), base64.b64encode(secret).decode()[:20]):
            assert spelling not in dump
    assert ROOT_PURPOSE in keys.keyring().purposes


def test_table_uris(tmp_path: Path) -> None:
    assert open_root_table("sqlite:x.db", data_dir=tmp_path).description == (
        f"sqlite:{tmp_path / 'x.db'}"
    )
    assert (
        open_root_table("sqlite:///abs/x.db", data_dir=tmp_path).description == "sqlite:/abs/x.db"
    )
    pg = open_root_table("postgresql://u:pw@db/kms", data_dir=tmp_path, schema="s")
    assert "pw" not in pg.description
    assert "schema s" in pg.description
    for bad in ("mysql://db", "sqlite://host/x.db", "sqlite:dir/", "sqlite:x.db?mode=ro"):
        with pytest.raises(RegistryError, match="sqlite"):
            open_root_table(bad, data_dir=tmp_path)
    with pytest.raises(RegistryError, match="schema name"):
        open_root_table("postgresql://db/kms", data_dir=tmp_path, schema="Bad-Name")
