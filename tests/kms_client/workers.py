"""Subprocess workers for the multi-process tests (run as ``python -m tests.kms_client.workers``).

``rotate DATA_DIR STORE_URI GO_FILE COUNT``: open a key manager, print ``ready``,
wait for GO_FILE, rotate ``mfa-secrets`` COUNT times printing each new version.
``rewrap DATA_DIR STORE_URI BATCH``: run ``keys rewrap`` over wrapped secrets,
printing one ``batch`` line per batch (the test kills it with SIGKILL midway).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from kms_client.rewrap import SecretsRewrap, run_rewrap
from tests.kms_client.support import RecordingAuditor, open_manager


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def rotate(data_dir: Path, store: str, go: Path, count: int) -> None:
    manager = await open_manager(data_dir, RecordingAuditor(), store=store)
    _say("ready")
    while not go.exists():  # start every worker at once
        await asyncio.sleep(0.005)
    for _ in range(count):
        version = await manager.rotate("mfa-secrets")
        ct = manager.encrypt("mfa-secrets", b"made by worker", context=b"w")
        _say(f"rotated {version} {ct.hex()}")
    await manager.close()


async def rewrap(data_dir: Path, store: str, batch: int) -> None:
    manager = await open_manager(data_dir, RecordingAuditor(), store=store)
    _say("ready")

    def progress(source: str, moved: int, total: int) -> None:
        _say(f"batch {source} {moved} {total}")

    await run_rewrap(manager, [SecretsRewrap(manager)], batch_size=batch, on_batch=progress)
    _say("done")
    await manager.close()


def main() -> None:
    mode, data_dir, store, *rest = sys.argv[1:]
    if mode == "rotate":
        asyncio.run(rotate(Path(data_dir), store, Path(rest[0]), int(rest[1])))
    elif mode == "rewrap":
        asyncio.run(rewrap(Path(data_dir), store, int(rest[0])))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
