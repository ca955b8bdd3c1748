"""WrappedSecrets: values encrypted under a purpose, bound to their record name."""

from __future__ import annotations

from pathlib import Path

import pytest

from kms_client.errors import DecryptionError
from kms_client.secrets import WrappedSecrets
from tests.kms_client.support import open_manager


async def test_put_get_delete(tmp_path: Path) -> None:
    m = await open_manager(tmp_path)
    box = WrappedSecrets(m)
    assert await box.get("alice") is None
    await box.put("alice", b"JBSWY3DPEHPK3PXP")
    assert await box.get("alice") == b"JBSWY3DPEHPK3PXP"
    stored = await m.store.secret_get("mfa-secrets", "alice")
    assert stored is not None
    assert b"JBSWY3DPEHPK3PXP" not in stored
    assert await box.delete("alice")
    assert await box.get("alice") is None
    await m.close()


async def test_swapped_records_do_not_decrypt(tmp_path: Path) -> None:
    m = await open_manager(tmp_path)
    box = WrappedSecrets(m)
    await box.put("alice", b"a-secret")
    await box.put("bob", b"b-secret")
    alice = await m.store.secret_get("mfa-secrets", "alice")
    assert alice is not None
    await m.store.secret_put("mfa-secrets", "bob", alice)
    with pytest.raises(DecryptionError):
        await box.get("bob")
    assert await box.get("alice") == b"a-secret"
    await m.close()
