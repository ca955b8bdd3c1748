"""audited_keys: the audit log and the key manager opened and closed in the one safe order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.config import AuditConfig
from audit.errors import AuditKeyError
from audit.keys import keys_from_jwks
from audit.sources import checkpoint_file_lines, file_streams, find_log_files
from audit.verify import verify_log
from kms_client.config import KeysConfig
from kms_client.keysetup import audited_keys, fallback_checkpoint_signer


async def test_opens_unsealed_and_the_last_checkpoint_is_the_keyrings(tmp_path: Path) -> None:
    audit = AuditConfig(checkpoint_every=2)
    async with audited_keys(
        keys=KeysConfig(), audit=audit, data_dir=tmp_path, production=False, background=False
    ) as (_, keys):
        assert not keys.is_sealed
        keyring_kid = keys.signer("audit-checkpoint").kid
        jwks = keys.jwks("audit-checkpoint")

    fallback = fallback_checkpoint_signer(audit, data_dir=tmp_path, production=True)
    trusted = keys_from_jwks({"keys": [*jwks["keys"], fallback.public_jwk()]})
    report = verify_log(
        file_streams(find_log_files([audit.log_dir(tmp_path)])),
        keys=trusted,
        checkpoints=checkpoint_file_lines(audit.checkpoint_path(tmp_path)),
        complete=True,
    )
    assert report.ok, [str(f) for f in report.findings]
    (writer,) = report.writers
    assert writer.closed
    # Unseal is audited, so the log was open before the keyring; and the log
    # closed first, so its final checkpoint is signed by the keyring's key.
    text = "".join(p.read_text() for p in audit.log_dir(tmp_path).iterdir())
    assert '"keyring.unseal"' in text
    last = _last_checkpoint(audit.checkpoint_path(tmp_path))
    assert last["kid"] == keyring_kid != fallback.kid


def _last_checkpoint(directory: Path) -> dict[str, object]:
    lines = [line for p in sorted(directory.iterdir()) for line in p.read_text().splitlines()]
    record = json.loads(lines[-1])
    assert isinstance(record, dict)
    return record


def test_development_creates_the_fallback_key_once(tmp_path: Path) -> None:
    audit = AuditConfig()
    first = fallback_checkpoint_signer(audit, data_dir=tmp_path, production=False)
    again = fallback_checkpoint_signer(audit, data_dir=tmp_path, production=False)
    assert audit.key_path(tmp_path).is_file()
    assert first.kid == again.kid


def test_production_never_creates_the_fallback_key(tmp_path: Path) -> None:
    audit = AuditConfig()
    with pytest.raises(AuditKeyError, match="does not exist"):
        fallback_checkpoint_signer(audit, data_dir=tmp_path, production=True)
    assert not audit.key_path(tmp_path).exists()
