"""The real audit log (audit.open_audit_log) as the key manager's auditor and checkpoint signer."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from audit.config import AuditConfig
from audit.keys import keys_from_jwks, public_jwk
from audit.log import open_audit_log
from audit.signer import Ed25519CheckpointSigner
from audit.sources import checkpoint_file_lines, file_streams, find_log_files
from audit.verify import verify_log
from kms_client.config import KeysConfig
from kms_client.errors import Sealed
from kms_client.opening import open_key_manager
from kms_client.purpose_signer import PurposeSigner


async def test_key_events_are_audited_and_checkpoints_signed_by_the_keyring(tmp_path: Path) -> None:
    config = AuditConfig(checkpoint_every=4)
    bootstrap = Ed25519CheckpointSigner.generate()
    signer = PurposeSigner("audit-checkpoint", fallback=bootstrap)
    audit_log = await open_audit_log(config, data_dir=tmp_path, signer=signer)
    keys = await open_key_manager(
        KeysConfig(), data_dir=tmp_path, auditor=audit_log, production=False, background=False
    )
    signer.bind(keys)
    assert signer.kid == keys.signer("audit-checkpoint").kid
    await keys.rotate("mfa-secrets", actor="alice")
    await keys.revoke("mfa-secrets", 1, actor="alice")
    await keys.destroy("mfa-secrets", 1, actor="alice")
    await keys.rotate("audit-checkpoint", actor="alice")
    for i in range(6):
        keys.encrypt("mfa-secrets", b"%d" % i, context=b"c")
    jwks = keys.jwks("audit-checkpoint")
    material = [k.material for r in keys.keyring().purposes.values() for k in r.keys if k.material]
    await audit_log.close()
    await keys.close()

    trusted = keys_from_jwks({"keys": [*jwks["keys"], public_jwk(bootstrap.public_key())]})
    log_dir, checkpoints = config.log_dir(tmp_path), config.checkpoint_path(tmp_path)
    report = verify_log(
        file_streams(find_log_files([log_dir])),
        keys=trusted,
        checkpoints=checkpoint_file_lines(checkpoints),
        complete=True,
    )
    assert report.ok, [str(f) for f in report.findings]
    (writer,) = report.writers
    assert writer.closed
    assert writer.entries > 20
    assert writer.checkpoints >= 5

    text = "".join(p.read_text() for p in [*log_dir.iterdir(), *checkpoints.iterdir()])
    for event in ("key.create", "keyring.unseal", "key.rotate", "key.revoke", "key.destroy"):
        assert f'"{event}"' in text
    used = {k["kid"] for k in jwks["keys"]}
    assert sum(f'"kid":"{kid}"' in text for kid in used) == 2  # both keyring keys signed
    for secret in material:
        for form in (secret.hex(), base64.b64encode(secret).decode()):
            assert form not in text


async def test_unbound_signer_without_fallback_fails_closed() -> None:
    with pytest.raises(Sealed, match="sealed or unbound"):
        _ = PurposeSigner().kid
