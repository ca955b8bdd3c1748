"""Several real processes on one keyring store: concurrent rotations never fork the keyring."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kms_client.keyring import KeyState
from tests.kms_client.stores import BACKENDS, redis_cleanup, store_uri
from tests.kms_client.support import open_manager

REPO = Path(__file__).resolve().parents[2]
WORKERS = 3
ROTATIONS = 4


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.kms_client.workers", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_rotations_in_separate_processes_never_fork(
    request, backend: str, tmp_path: Path, redis_url: str, unique_prefix: str
) -> None:
    pg = request.getfixturevalue("pg_schema") if backend == "postgres" else ("", "")
    uri = store_uri(backend, tmp_path=tmp_path, redis_url=redis_url, prefix=unique_prefix, pg=pg)
    async with redis_cleanup(redis_url, unique_prefix):
        first = await open_manager(tmp_path, store=uri)  # creates the keyring
        await first.close()
        go = tmp_path / "go"
        procs = [
            _spawn("rotate", str(tmp_path), uri, str(go), str(ROTATIONS)) for _ in range(WORKERS)
        ]
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * WORKERS, [e for _, e in outputs]

        made = [line.split() for out, _ in outputs for line in out.splitlines()]
        versions = sorted(int(v) for _, v, _ in made)
        assert versions == list(range(2, 2 + WORKERS * ROTATIONS))  # no version made twice

        final = await open_manager(tmp_path, store=uri)
        try:
            ring = final.keyring().ring("mfa-secrets")
            assert ring.primary == 1 + WORKERS * ROTATIONS
            assert [k.version for k in ring.keys] == list(range(1, 2 + WORKERS * ROTATIONS))
            assert [k.state for k in ring.keys].count(KeyState.ACTIVE) == 1
            assert final.keyring_version == 1 + WORKERS * ROTATIONS
            for _, _, ct in made:  # every worker's ciphertext survives in the one keyring
                assert final.decrypt("mfa-secrets", bytes.fromhex(ct), context=b"w") == (
                    b"made by worker"
                )
        finally:
            await final.close()
