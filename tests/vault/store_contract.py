"""The VaultStore contract: what every backend must do, as reusable async checks.

Each check takes an open store and the settable clock it was built with, and
asserts one rule of :mod:`vault.store`. ``test_store_contract`` runs them all
against every real backend; a new backend passes them before it ships.
"""

from __future__ import annotations

import os

import pytest

from tests.vault.conftest import Clock
from vault.store import StoredRecord, VaultStore


def rec(
    n: int, *, version: int = 1, expires: int | None = None, outer: bytes | None = None
) -> StoredRecord:
    """A record with a 32-byte id derived from ``n`` and random-looking parts."""
    rid = n.to_bytes(4, "big") * 8
    return StoredRecord(
        id=rid,
        key_version=version,
        outer=outer if outer is not None else os.urandom(12) + bytes([n % 251]) * 40,
        meta=b"\x01meta" + n.to_bytes(4, "big"),
        expires=expires,
    )


async def put_new_inserts_and_never_overwrites(store: VaultStore, clock: Clock) -> None:
    a, b = rec(1), rec(2)
    assert await store.put_new([a, b]) == [True, True]
    rival = rec(1)  # same id, other bytes
    assert await store.put_new([rival, rec(3)]) == [False, True]
    got = await store.get_many([a.id])
    assert got[a.id] == a  # the first record stands


async def duplicate_ids_in_one_batch_insert_once(store: VaultStore, clock: Clock) -> None:
    first, again = rec(7), rec(7)
    assert await store.put_new([first, rec(8), again]) == [True, True, False]
    assert (await store.get_many([first.id]))[first.id] == first


async def empty_calls_are_harmless(store: VaultStore, clock: Clock) -> None:
    assert await store.put_new([]) == []
    assert await store.get_many([]) == {}
    assert await store.delete_many([]) == 0


async def get_many_omits_missing_and_expired(store: VaultStore, clock: Clock) -> None:
    now = int(clock())
    live, dying, persistent = rec(1, expires=now + 60), rec(2, expires=now + 10), rec(3)
    await store.put_new([live, dying, persistent])
    got = await store.get_many([live.id, dying.id, persistent.id, rec(99).id])
    assert got == {live.id: live, dying.id: dying, persistent.id: persistent}
    clock.t = now + 10  # expires is exclusive: at `expires` the record is gone
    got = await store.get_many([live.id, dying.id, persistent.id])
    assert set(got) == {live.id, persistent.id}


async def an_expired_id_is_free_again(store: VaultStore, clock: Clock) -> None:
    now = int(clock())
    old = rec(5, expires=now + 5)
    assert await store.put_new([old]) == [True]
    fresh = rec(5, expires=now + 500)
    assert await store.put_new([fresh]) == [False]  # still live: not replaced
    clock.t = now + 6
    assert await store.put_new([fresh]) == [True]
    assert (await store.get_many([fresh.id]))[fresh.id] == fresh


async def delete_counts_live_records(store: VaultStore, clock: Clock) -> None:
    now = int(clock())
    a, b, gone = rec(1), rec(2), rec(3, expires=now + 1)
    await store.put_new([a, b, gone])
    clock.t = now + 2
    assert await store.delete_many([a.id, gone.id, rec(42).id, a.id]) == 1
    assert set(await store.get_many([a.id, b.id, gone.id])) == {b.id}
    assert await store.delete_many([a.id]) == 0
    assert await store.put_new([a]) == [True]  # erased ids can be stored again


async def scan_walks_ids_in_order_with_paging(store: VaultStore, clock: Clock) -> None:
    now = int(clock())
    records = [rec(n, expires=now + 1 if n % 5 == 0 else None) for n in range(1, 41)]
    await store.put_new(records[::-1])
    clock.t = now + 2
    expected = sorted((r for r in records if r.expires is None), key=lambda r: r.id)
    pages: list[list[StoredRecord]] = []
    after: bytes | None = None
    while True:
        page = await store.scan(after=after, limit=7)
        assert len(page) <= 7
        if not page:
            break
        pages.append(page)
        after = page[-1].id
    walked = [r for page in pages for r in page]
    assert walked == expected
    assert all(len(page) == 7 for page in pages[:-1])
    assert await store.scan(after=expected[-1].id, limit=10) == []
    assert await store.scan(after=b"", limit=3) == expected[:3]


async def replace_outer_is_compare_and_set(store: VaultStore, clock: Clock) -> None:
    old = rec(9, version=1)
    await store.put_new([old])
    new = StoredRecord(old.id, 2, b"rewrapped-outer", old.meta, old.expires)
    assert await store.replace_outer(old, new) is True
    assert (await store.get_many([old.id]))[old.id] == new
    # A second rewrap from the stale record must not win.
    other = StoredRecord(old.id, 3, b"other-outer", old.meta, old.expires)
    assert await store.replace_outer(old, other) is False
    assert (await store.get_many([old.id]))[old.id] == new
    # Nor may one against a record that is gone.
    await store.delete_many([old.id])
    assert await store.replace_outer(new, other) is False
    assert await store.get_many([old.id]) == {}


async def replace_outer_refuses_an_expired_record(store: VaultStore, clock: Clock) -> None:
    now = int(clock())
    old = rec(4, expires=now + 3)
    await store.put_new([old])
    clock.t = now + 4
    new = StoredRecord(old.id, 2, b"late", old.meta, old.expires)
    assert await store.replace_outer(old, new) is False


async def replace_outer_may_change_only_version_and_outer(store: VaultStore, clock: Clock) -> None:
    old = rec(6)
    await store.put_new([old])
    for bad in (
        StoredRecord(old.id, 2, b"x", b"other meta", old.expires),
        StoredRecord(old.id, 2, b"x", old.meta, 12345),
        StoredRecord(rec(7).id, 2, b"x", old.meta, old.expires),
    ):
        with pytest.raises(ValueError, match="key_version and outer only"):
            await store.replace_outer(old, bad)
    assert (await store.get_many([old.id]))[old.id] == old


async def large_batches_go_in_one_call(store: VaultStore, clock: Clock) -> None:
    # S3 cannot batch: one request per record (about 8 ms each on moto_server), so it
    # gets 10 x its default concurrency of 16 rather than 1000 to keep the suite fast.
    n = 160 if store.name == "s3" else 1000
    half = n // 2
    records = [rec(i) for i in range(1000, 1000 + n)]
    assert await store.put_new(records) == [True] * n
    again = records[:half] + [rec(i) for i in range(1000 + n, 1000 + n + half)]
    assert await store.put_new(again) == [False] * half + [True] * half
    got = await store.get_many([r.id for r in records])
    assert got == {r.id: r for r in records}
    assert await store.delete_many([r.id for r in records]) == n
    assert await store.get_many([r.id for r in records[:10]]) == {}


async def binary_parts_survive_exactly(store: VaultStore, clock: Clock) -> None:
    odd = StoredRecord(bytes(range(32)), 0, bytes(range(256)) + b"\n -", b"", None)
    empty = StoredRecord(b"\xff" * 32, 2**31 - 1, b"", bytes(range(255, -1, -1)), 2**40)
    assert await store.put_new([odd, empty]) == [True, True]
    assert await store.get_many([odd.id, empty.id]) == {odd.id: odd, empty.id: empty}


async def durability_answers(store: VaultStore, clock: Clock) -> None:
    report = await store.durability()
    assert report.detail.startswith(f"{store.name}:")


CHECKS = (
    put_new_inserts_and_never_overwrites,
    duplicate_ids_in_one_batch_insert_once,
    empty_calls_are_harmless,
    get_many_omits_missing_and_expired,
    an_expired_id_is_free_again,
    delete_counts_live_records,
    scan_walks_ids_in_order_with_paging,
    replace_outer_is_compare_and_set,
    replace_outer_refuses_an_expired_record,
    replace_outer_may_change_only_version_and_outer,
    large_batches_go_in_one_call,
    binary_parts_survive_exactly,
    durability_answers,
)
