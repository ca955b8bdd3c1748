"""What the gateway does with the keyring beyond opening it: readiness and public keys.

Public halves only ever leave through here: the audit-checkpoint JWKS written
beside the audit log (so ``tokengate audit verify`` can check keyring-signed
checkpoints) and, on the public listener, the upstream-signing JWKS.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kms_client import KeyManager
from kms_client.keysetup import fallback_checkpoint_signer
from proxy.settings import Settings

CHECKPOINT_JWKS = Path("keys/audit-checkpoint.jwks.json")


@dataclass(frozen=True, slots=True)
class KeyringReady:
    """Readiness: the keyring is unsealed."""

    keys: KeyManager
    name: str = "keyring"

    async def check(self) -> bool:
        """True while key material is in memory."""
        return not self.keys.is_sealed


def checkpoint_jwks(settings: Settings, keys: KeyManager) -> dict[str, list[dict[str, str]]]:
    """Every key that may have signed this gateway's audit checkpoints."""
    fallback = fallback_checkpoint_signer(
        settings.gateway.audit, data_dir=settings.data_dir, production=settings.production
    )
    found = list(keys.jwks("audit-checkpoint")["keys"]) if not keys.is_sealed else []
    kids = {k["kid"] for k in found}
    if fallback.kid not in kids:
        found.append(fallback.public_jwk())
    return {"keys": found}


def publish_checkpoint_jwks(settings: Settings, keys: KeyManager) -> Path:
    """Write the checkpoint JWKS (public keys only) atomically under the data dir."""
    path = settings.data_dir / CHECKPOINT_JWKS
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps(checkpoint_jwks(settings, keys), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".jwks-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
