"""Opening the audit log and the key manager together, in the one safe order.

The audit log must exist before the key manager unseals (unseal is audited),
and its checkpoints must be signed by the keyring's audit-checkpoint key once
the keyring is open. So: load the fallback checkpoint key (the audit
package's PEM: created in development, required in production), open the
audit log with a late-bound :class:`~kms_client.PurposeSigner`, open and
unseal the key manager with the audit log as its auditor, bind the signer.
On exit the audit log closes first (its final checkpoint is signed by the
keyring), then the key manager drops its keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from audit.config import AuditConfig
from audit.log import AuditLog, open_audit_log
from audit.signer import Ed25519CheckpointSigner
from kms_client import KeyManager, KeysConfig, PurposeSigner, check_keys_config, open_key_manager
from kms_client.opening import needs_shares
from kms_client.shamir import Share


def fallback_checkpoint_signer(
    audit: AuditConfig, *, data_dir: Path, production: bool
) -> Ed25519CheckpointSigner:
    """The audit package's checkpoint key: created in development, required in production."""
    path = audit.key_path(data_dir)
    if production:
        return Ed25519CheckpointSigner.load(path)
    return Ed25519CheckpointSigner.load_or_create(path)


@asynccontextmanager
async def audited_keys(
    *,
    keys: KeysConfig,
    audit: AuditConfig,
    data_dir: Path,
    production: bool,
    background: bool,
    actor: str = "startup",
    shares: Callable[[], Sequence[Share]] | None = None,
) -> AsyncIterator[tuple[AuditLog, KeyManager]]:
    """The audit log and an unsealed key manager (sealed only if shares are needed and absent)."""
    check_keys_config(keys, data_dir=data_dir, production=production)
    fallback = await asyncio.to_thread(
        fallback_checkpoint_signer, audit, data_dir=data_dir, production=production
    )
    signer = PurposeSigner("audit-checkpoint", fallback=fallback)
    audit_log = await open_audit_log(audit, data_dir=data_dir, signer=signer)
    manager: KeyManager | None = None
    try:
        manager = await open_key_manager(
            keys, data_dir=data_dir, auditor=audit_log, production=production, background=background
        )
        if needs_shares(manager) and shares is not None:
            collected = await asyncio.to_thread(shares)
            await manager.unseal(shares=list(collected), actor=actor)
        signer.bind(manager)
        yield audit_log, manager
    finally:
        await audit_log.close()
        if manager is not None:
            await manager.close()
