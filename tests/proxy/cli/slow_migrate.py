"""``python -m tests.proxy.cli.slow_migrate <tokengate args>``: the real CLI with slow batches.

Each batch's row update (SqliteSource.apply) waits a moment before and after
writing and prints ``batch`` once committed, so a test can kill -9 the
process mid-run, at any point between two batches or inside one.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from proxy.cli import main
from proxy.migrate.source import Change
from proxy.migrate.sqlite_source import SqliteSource

_apply = SqliteSource.apply


async def _slow_apply(self: SqliteSource, changes: Sequence[Change]) -> int:
    await asyncio.sleep(0.05)  # the batch's vault records are committed, its rows not yet
    written = await _apply(self, changes)
    print("batch", flush=True)
    await asyncio.sleep(0.05)
    return written


SqliteSource.apply = _slow_apply  # type: ignore[method-assign]
sys.argv = ["tokengate", *sys.argv[1:]]
main()
