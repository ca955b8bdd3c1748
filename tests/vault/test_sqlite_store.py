"""SqliteVault: WAL + FULL sync, shared by processes, fails closed on a held lock, never blocks the loop."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.vault.conftest import Clock
from tests.vault.store_contract import rec
from vault.errors import VaultConfigError, VaultUnavailable
from vault.sqlite_store import SqliteVault

ROOT = Path(__file__).resolve().parents[2]


async def test_open_sets_wal_and_full_sync_and_says_durable(tmp_path: Path) -> None:
    store = SqliteVault(tmp_path / "sub" / "v.db")
    await store.open()
    try:
        report = await store.durability()
        assert report.durable
        assert "wal" in report.detail
        with sqlite3.connect(tmp_path / "sub" / "v.db") as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert other.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        await store.close()
        await store.close()  # idempotent


async def test_an_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "v.db") as conn:
        conn.execute("PRAGMA user_version = 7")
    store = SqliteVault(tmp_path / "v.db")
    with pytest.raises(VaultConfigError, match="unknown schema version 7"):
        await store.open()


async def test_a_closed_store_fails_closed(tmp_path: Path) -> None:
    store = SqliteVault(tmp_path / "v.db")
    with pytest.raises(VaultUnavailable, match="not open"):
        await store.get_many([rec(1).id])
    await store.open()
    await store.close()
    with pytest.raises(VaultUnavailable):
        await store.put_new([rec(1)])


async def test_a_held_write_lock_fails_closed_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    store = SqliteVault(path, timeout=0.5)
    await store.open()
    await store.put_new([rec(1)])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        with pytest.raises(VaultUnavailable, match="locked"):
            await store.put_new([rec(2), rec(3)])
        elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 3.0
        assert ticks >= 10  # the event loop kept running while the thread waited
        assert set(await store.get_many([rec(1).id])) == {rec(1).id}  # WAL readers go on
    finally:
        task.cancel()
        other.execute("ROLLBACK")
        other.close()
    assert await store.get_many([rec(2).id, rec(3).id]) == {}  # nothing half-written
    assert await store.put_new([rec(2), rec(3)]) == [True, True]
    await store.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tests.vault.store_contract import rec
    from vault.sqlite_store import SqliteVault

    async def main() -> None:
        store = SqliteVault(Path(sys.argv[1]), timeout=10)
        await store.open()
        first, count = int(sys.argv[2]), int(sys.argv[3])
        records = [rec(n) for n in range(first, first + count)]
        print("ready", flush=True)
        flags = await store.put_new(records)
        print(sum(flags))
        sys.stdout.flush()
        await store.close()

    asyncio.run(main())
    """
)


def _writer(path: Path, first: int, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(first), str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_worker_processes_share_the_file_and_each_id_is_inserted_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v.db"
    store = SqliteVault(path)
    await store.open()
    procs = [_writer(path, 0, 300), _writer(path, 150, 300)]  # ids 150..299 overlap
    mine = await store.put_new([rec(n) for n in range(250, 350)])
    outputs = [int(p.communicate(timeout=60)[0].split()[-1]) for p in procs]
    assert sum(outputs) + sum(mine) == 450  # ids 0..449, each inserted by exactly one writer
    assert len(await store.get_many([rec(n).id for n in range(450)])) == 450
    await store.close()


async def test_a_writer_killed_mid_batch_leaves_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    store = SqliteVault(path)
    await store.open()
    assert await store.put_new([rec(1)]) == [True]
    proc = _writer(path, 1000, 60_000)
    assert proc.stdout is not None
    assert await asyncio.to_thread(proc.stdout.readline) == "ready\n"
    await asyncio.sleep(0.3)  # inside the batch: 60k rows take most of a second
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    ids = [rec(n).id for n in range(1000, 61_000)]
    present = len(await store.get_many(ids))
    assert present in (0, 60_000)
    assert set(await store.get_many([rec(1).id])) == {rec(1).id}
    await store.close()


async def test_purge_expired_removes_only_expired_rows(tmp_path: Path, clock: Clock) -> None:
    store = SqliteVault(tmp_path / "v.db", now=clock)
    await store.open()
    now = int(clock())
    await store.put_new([rec(1, expires=now + 1), rec(2, expires=now + 100), rec(3)])
    assert await store.purge_expired() == 0
    clock.t = now + 2
    assert await store.purge_expired() == 1
    clock.t = now
    assert set(await store.get_many([rec(1).id, rec(2).id, rec(3).id])) == {rec(2).id, rec(3).id}
    await store.close()
