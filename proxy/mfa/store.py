"""The MFA record store boundary, and the factory that picks a backend by URI.

Every method that decides between two concurrent requests is atomic in the
backend (a transaction in SQLite, a Lua script or single command in Redis):
activating a pending TOTP enrolment, advancing its last accepted time step,
consuming a recovery code, moving a WebAuthn counter, taking a challenge.
A backend failure raises :class:`~proxy.mfa.errors.MfaStoreUnavailable`.

Backends: ``sqlite:///path`` (the embedded default; one host, many workers)
and ``redis://`` / ``rediss://`` (replicas).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from proxy.mfa.records import Ceremony, RecoveryCodeSet, TotpEnrolment, WebAuthnCredential
from tokengate.errors import ConfigError


class MfaRecordStore(Protocol):
    """Per-subject MFA state."""

    async def open(self) -> None:
        """Connect and create the schema if needed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def put_pending_totp(self, enrolment: TotpEnrolment) -> None:
        """Store ``enrolment`` as the subject's pending TOTP, replacing any pending one."""
        ...

    async def get_totp(self, subject: str, *, pending: bool) -> TotpEnrolment | None:
        """The pending or the active TOTP enrolment of ``subject``."""
        ...

    async def activate_totp(self, subject: str, *, step: int, at: datetime) -> bool:
        """Atomically make the pending enrolment the active one (replacing it).

        Sets ``confirmed_at`` = ``at`` and ``last_step`` = ``step``; False if
        nothing was pending (a concurrent confirmation won).
        """
        ...

    async def advance_totp_step(self, subject: str, step: int) -> bool:
        """Set the active enrolment's ``last_step`` to ``step`` if it is greater; else False."""
        ...

    async def delete_totp(self, subject: str) -> bool:
        """Remove the pending and active TOTP enrolments; False if there were none."""
        ...

    async def replace_recovery_codes(
        self, subject: str, *, key_version: int, digests: Sequence[bytes], at: datetime
    ) -> None:
        """Replace the subject's recovery codes with ``digests`` (old codes stop working)."""
        ...

    async def recovery_codes(self, subject: str) -> RecoveryCodeSet | None:
        """The unused codes of ``subject``, None if it never had any."""
        ...

    async def consume_recovery_code(self, subject: str, digest: bytes) -> bool:
        """Delete one unused code; False if it was not there (used already)."""
        ...

    async def delete_recovery_codes(self, subject: str) -> bool:
        """Remove the subject's recovery codes; False if there were none."""
        ...

    async def add_webauthn_credential(self, credential: WebAuthnCredential) -> bool:
        """Store a new credential; False if its id is registered already (to anyone)."""
        ...

    async def webauthn_credentials(self, subject: str) -> list[WebAuthnCredential]:
        """The subject's credentials, oldest first."""
        ...

    async def update_sign_count(
        self, subject: str, credential_id: bytes, *, expected: int, new: int, at: datetime
    ) -> bool:
        """Compare-and-set of a credential's counter (and ``last_used_at``); False on a race."""
        ...

    async def delete_webauthn_credential(self, subject: str, credential_id: bytes) -> bool:
        """Remove one credential of ``subject``; False if it had no such credential."""
        ...

    async def put_challenge(
        self, subject: str, ceremony: Ceremony, challenge: bytes, *, expires_at: datetime
    ) -> None:
        """Keep ``challenge`` as the subject's open challenge for ``ceremony`` (replacing one)."""
        ...

    async def take_challenge(
        self, subject: str, ceremony: Ceremony, *, now: datetime
    ) -> bytes | None:
        """Atomically remove and return the open challenge; None if absent or expired."""
        ...


def open_mfa_store(uri: str, *, data_dir: Path, prefix: str = "tg:") -> MfaRecordStore:
    """The backend for ``uri`` (not opened yet); ConfigError for an unknown scheme."""
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        from proxy.mfa.sqlite_store import SqliteMfaStore

        return SqliteMfaStore(sqlite_path(uri, data_dir=data_dir))
    if scheme in ("redis", "rediss"):
        from proxy.mfa.redis_store import RedisMfaStore

        return RedisMfaStore(uri, prefix=prefix)
    raise ConfigError(f"mfa.store: unsupported scheme '{scheme}' (sqlite:///, redis://, rediss://)")


def check_store_uri(uri: str, *, production: bool) -> None:
    """ConfigError if production mode must refuse ``uri`` (plain Redis to a remote host)."""
    parts = urlsplit(uri)
    if production and parts.scheme == "redis" and not _is_local(parts.hostname or ""):
        raise ConfigError("mfa.store: production mode needs rediss:// (TLS) for a remote Redis")


def _is_local(host: str) -> bool:
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_store_uri(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/mfa.sqlite3``."""
    return f"sqlite:///{data_dir / 'mfa.sqlite3'}"


def sqlite_path(uri: str, *, data_dir: Path) -> Path:
    """The file of a ``sqlite:///abs/path`` or ``sqlite:relative`` URI (relative to data_dir)."""
    parts = urlsplit(uri)
    if parts.netloc or parts.query or parts.fragment:
        raise ConfigError("mfa.store: sqlite URI must be sqlite:///absolute/path or sqlite:name")
    path = Path(parts.path)
    if not parts.path:
        raise ConfigError("mfa.store: sqlite URI names no file")
    return path if path.is_absolute() else data_dir / path
