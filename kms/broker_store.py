"""What the key broker keeps between calls: nonces, attestation sessions, grants.

Rules every store keeps (SQLite: :mod:`kms.broker_sqlite`; PostgreSQL, shared
by several KMS replicas: :mod:`kms.broker_pg`):

- A nonce is issued for one TEE id and taken at most once: ``take_nonce`` is
  one ``DELETE ... RETURNING`` of an unexpired row, so two replicas cannot
  both accept it.
- A session is looked up by the SHA-256 of its token (the token itself is
  never stored) and is live while unexpired and not revoked.
- A grant's K2 is stored only encrypted under the KMS keyring
  (``sealed_key``). ``claim`` releases a grant at most once: one ``UPDATE ...
  WHERE released = false AND revoked = false AND expires_at > now`` that also
  wipes ``sealed_key``, returning the old value only to the one caller whose
  update matched. Revoking a grant wipes it too.
- Times are unix seconds handed in by the caller (``now``): no wall clock here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tee.db import is_postgres, sqlite_file
from tee.errors import RegistryError


@dataclass(frozen=True, slots=True)
class Session:
    """A live attestation session: the TEE and the key it proved, until ``expires_at``."""

    digest: bytes = field(repr=False)
    tee_id: str
    public_key: bytes
    expires_at: int


@dataclass(frozen=True, slots=True)
class Grant:
    """A one-time key bound to (TEE, worker key, job, tenant, request id, expiry)."""

    grant_id: str
    tee_id: str
    worker_key: bytes
    job: str
    tenant: str
    request_id: str
    expires_at: int
    sealed_key: bytes = field(repr=False)
    released: bool = False
    revoked: bool = False


class BrokerStore(Protocol):
    """Nonces, sessions and grants; every call is one transaction."""

    async def open(self) -> None:
        """Connect and create the tables; idempotent."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...

    async def add_nonce(
        self, tee_id: str, nonce: bytes, *, expires_at: int, now: int, limit: int
    ) -> bool:
        """Store a nonce for ``tee_id``; False when ``limit`` unexpired ones are pending."""
        ...

    async def take_nonce(self, tee_id: str, nonce: bytes, *, now: int) -> bool:
        """Consume the nonce if it was issued for ``tee_id`` and is unexpired (once)."""
        ...

    async def add_session(self, session: Session) -> None:
        """Store a new session."""
        ...

    async def session(self, digest: bytes, *, now: int) -> Session | None:
        """The live session with this token digest, else None."""
        ...

    async def has_session(self, tee_id: str, public_key: bytes, *, now: int) -> bool:
        """Whether a live session binds exactly ``(tee_id, public_key)``."""
        ...

    async def add_grant(self, grant: Grant) -> None:
        """Store a new grant (its id is fresh and random)."""
        ...

    async def grant(self, grant_id: str) -> Grant | None:
        """The grant, None if unknown (or purged)."""
        ...

    async def claim(self, grant_id: str, *, now: int) -> bytes | None:
        """Mark the grant released and return its sealed key, once; None if not claimable."""
        ...

    async def revoke(self, tee_id: str, public_key: bytes | None, *, now: int) -> tuple[int, int]:
        """Revoke live sessions and unreleased grants of ``tee_id`` (and key); the counts."""
        ...

    async def purge(self, *, now: int, keep: int) -> None:
        """Drop expired nonces; wipe expired grants' keys; drop rows expired ``keep`` s ago."""
        ...


def grant_row(grant: Grant) -> tuple[object, ...]:
    """The INSERT parameters of ``grant`` (both dialects)."""
    return (
        grant.grant_id,
        grant.tee_id,
        grant.worker_key,
        grant.job,
        grant.tenant,
        grant.request_id,
        grant.expires_at,
        grant.sealed_key,
    )


def grant_from_row(row: tuple[object, ...]) -> Grant:
    """A grant from a ``GET_GRANT`` row (both dialects)."""
    gid, tee_id, worker_key, job, tenant, request_id, expires_at, sealed, released, revoked = row
    return Grant(
        grant_id=str(gid),
        tee_id=str(tee_id),
        worker_key=_bytes(worker_key),
        job=str(job),
        tenant=str(tenant),
        request_id=str(request_id),
        expires_at=_int(expires_at),
        sealed_key=_bytes(sealed),
        released=bool(released),
        revoked=bool(revoked),
    )


def session_from_row(digest: bytes, row: tuple[object, ...]) -> Session:
    """A session from a ``GET_SESSION`` row (both dialects)."""
    tee_id, public_key, expires_at = row
    return Session(digest, str(tee_id), _bytes(public_key), _int(expires_at))


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError("kms: a binary column held something else")


def _int(value: object) -> int:
    if isinstance(value, int):
        return value
    raise TypeError("kms: an integer column held something else")


def open_broker_store(
    uri: str, *, data_dir: Path, schema: str = "tokengate_kms", timeout: float = 5.0
) -> BrokerStore:
    """The store ``uri`` names (``sqlite:PATH`` or ``postgresql://``), not yet opened."""
    if is_postgres(uri):
        from kms.broker_pg import PostgresBrokerStore

        return PostgresBrokerStore(uri, schema=schema, timeout=timeout)
    if uri.startswith("sqlite:"):
        from kms.broker_sqlite import SqliteBrokerStore

        return SqliteBrokerStore(sqlite_file(uri, data_dir), timeout=timeout)
    raise RegistryError("kms: store must be sqlite:PATH or postgresql://")
