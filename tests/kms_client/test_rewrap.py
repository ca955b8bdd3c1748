"""Rewrap: moving secrets to the primary, the registry, and a SIGKILL midway losing nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kms_client.keyring import KeyState
from kms_client.rewrap import (
    KeyringRewrap,
    SecretsRewrap,
    register_rewrap_source,
    rewrap_sources,
    run_rewrap,
)
from kms_client.secrets import WrappedSecrets
from tests.kms_client.stores import redis_cleanup, store_uri
from tests.kms_client.support import RecordingAuditor, open_manager

REPO = Path(__file__).resolve().parents[2]


async def test_rewrap_moves_everything_to_the_primary(tmp_path: Path) -> None:
    auditor = RecordingAuditor()
    m = await open_manager(tmp_path, auditor)
    box = WrappedSecrets(m)
    for i in range(25):
        await box.put(f"user-{i}", b"seed-%d" % i)
    await m.rotate("mfa-secrets")
    source = SecretsRewrap(m)
    assert await source.pending() == 25
    assert await source.count("mfa-secrets", 1) == 25
    seen: list[int] = []
    results = await run_rewrap(
        m, [source], batch_size=4, on_batch=lambda _n, moved, _t: seen.append(moved), actor="ops"
    )
    assert results["secrets"].rewrapped == 25
    assert results["secrets"].done
    assert sum(seen) == 25
    assert await SecretsRewrap(m).pending() == 0
    await m.destroy("mfa-secrets", 1)  # nothing depends on v1 any more
    for i in range(25):
        assert await box.get(f"user-{i}") == b"seed-%d" % i
    ok = auditor.find("keyring.rewrap", result="ok")
    assert ok == [
        {"source": "secrets", "actor": "ops", "rewrapped": 25, "remaining": 0, "result": "ok"}
    ]
    await m.close()


async def test_secrets_under_revoked_versions_are_skipped_not_lost(tmp_path: Path) -> None:
    m = await open_manager(tmp_path)
    box = WrappedSecrets(m)
    await box.put("old", b"v1 secret")
    await m.rotate("mfa-secrets")
    await m.revoke("mfa-secrets", 1)
    results = await run_rewrap(m, [SecretsRewrap(m)], batch_size=10)
    assert (results["secrets"].rewrapped, results["secrets"].skipped) == (0, 1)
    assert await m.store.secret_get("mfa-secrets", "old") is not None
    await m.close()


async def test_keyring_source_finishes_retired_kwks(tmp_path: Path) -> None:
    m = await open_manager(tmp_path)
    source = KeyringRewrap(m)
    assert await source.pending() == 0
    version = await m.rotate_kwk(actor="ops")
    assert version == 2
    assert await source.pending() == 0
    assert m.keyring().retired_kwks == ()
    await m.close()


def test_registry_refuses_duplicates() -> None:
    assert {"keyring", "secrets"} <= set(rewrap_sources())
    with pytest.raises(ValueError, match="registered twice"):
        register_rewrap_source("secrets", SecretsRewrap)


# Redis returns a small hash (<= 512 entries, listpack) in one HSCAN page: use more.
@pytest.mark.parametrize(("backend", "total"), [("file", 400), ("redis", 1500)])
async def test_rewrap_killed_midway_resumes_with_nothing_lost(
    backend: str, total: int, tmp_path: Path, redis_url: str, unique_prefix: str
) -> None:
    uri = store_uri(
        backend, tmp_path=tmp_path, redis_url=redis_url, prefix=unique_prefix, pg=("", "")
    )
    async with redis_cleanup(redis_url, unique_prefix):
        m = await open_manager(tmp_path, store=uri)
        box = WrappedSecrets(m)
        for i in range(total):
            await box.put(f"user-{i:04d}", b"seed-%d" % i)
        await m.rotate("mfa-secrets")
        await m.close()

        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.kms_client.workers", "rewrap", str(tmp_path), uri, "2"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(3):
            assert proc.stdout.readline().startswith("batch secrets")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        m = await open_manager(tmp_path, store=uri)
        box = WrappedSecrets(m)
        left = await SecretsRewrap(m).pending()
        assert 0 < left < total  # it really stopped midway
        for i in range(total):  # nothing lost: old and new versions both open
            assert await box.get(f"user-{i:04d}") == b"seed-%d" % i
        results = await run_rewrap(m, [SecretsRewrap(m)], batch_size=50)
        assert results["secrets"].rewrapped == left
        assert await SecretsRewrap(m).pending() == 0
        await m.rotate("mfa-secrets")
        await m.destroy("mfa-secrets", 1)
        assert m.keyring().ring("mfa-secrets").get(1).state is KeyState.DESTROYED  # type: ignore[union-attr]
        for i in range(total):
            assert await box.get(f"user-{i:04d}") == b"seed-%d" % i
        await m.close()
