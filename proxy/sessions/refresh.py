"""Refresh tokens: minting, hashing, and the rotation rule every store applies.

Rules:

1. A refresh token is 256 bits from :func:`kms_client.rng.random_bytes`,
   base64url (43 characters), opaque: it names nothing. The store keeps only
   ``SHA-256("tokengate/refresh/v1" || 0x00 || token)`` with its session id and
   family id. A 256-bit uniform secret cannot be recovered from its hash, so a
   key adds nothing; a leaked store yields no usable token.
2. One session has one family. The session record holds the family's state:
   the ``current`` token hash, the ``previous`` one and when it was rotated
   (``rotated_at``). Older hashes stay findable (so reuse is recognised) until
   the session's absolute expiry.
3. Presenting ``current`` rotates: a new token is minted, becomes ``current``,
   the presented one becomes ``previous``. Every use rotates.
4. Presenting ``previous`` within ``grace`` seconds of its rotation (default 10)
   is a concurrent tab racing the rotation: the session is returned without a
   new token (no second family member is minted); the client keeps the
   successor it already got.
5. Presenting any other hash of the family (``previous`` after the grace, or
   anything older) is reuse: somebody holds a stolen copy. The whole family,
   i.e. the session, is revoked and :class:`RefreshReuseDetected` is raised.
6. Only one refresh of a session runs at a time across replicas (a Redis lock,
   a SQLite write transaction, an asyncio lock), and the Redis write is also a
   compare-and-set on ``current``, so an expired lock cannot fork a family.
7. Before any of this, the session must be valid under :mod:`proxy.sessions.rules`
   (exists, not idle, not past its absolute lifetime, not revoked by a mark);
   otherwise the token is rejected like an unknown one. A rotation counts as
   activity and moves ``last_seen``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from kms_client.rng import random_bytes
from proxy.sessions.errors import RefreshRejected
from proxy.sessions.model import b64url

TOKEN_BYTES: Final = 32
DEFAULT_GRACE: Final = 10.0
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
_DOMAIN: Final = b"tokengate/refresh/v1\x00"


def new_refresh_token() -> tuple[str, str]:
    """A fresh token and its hash: ``(token, token_hash)``."""
    token = b64url(random_bytes(TOKEN_BYTES))
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """The stored form of ``token`` (hex SHA-256, domain-separated)."""
    return hashlib.sha256(_DOMAIN + token.encode("ascii")).hexdigest()


def presented_hash(token: str) -> str:
    """The hash of a token a client presented; RefreshRejected if it is malformed."""
    if not _TOKEN_RE.match(token):
        raise RefreshRejected("malformed")
    return token_hash(token)


@dataclass(frozen=True, slots=True)
class Family:
    """The rotation state kept on the session record (hashes only)."""

    current: str
    previous: str | None = None
    rotated_at: float | None = None

    def rotated(self, new_hash: str, now: float) -> Family:
        """The state after rule 3."""
        return Family(current=new_hash, previous=self.current, rotated_at=now)


class Outcome(Enum):
    """What presenting a hash of the family means."""

    ROTATE = "rotate"
    GRACE = "grace"
    REUSE = "reuse"


def decide(presented: str, family: Family, *, now: float, grace: float) -> Outcome:
    """Rules 3 to 5 for a hash known to belong to this family."""
    if hmac.compare_digest(presented, family.current):
        return Outcome.ROTATE
    if (
        family.previous is not None
        and family.rotated_at is not None
        and hmac.compare_digest(presented, family.previous)
        and now - family.rotated_at <= grace
    ):
        return Outcome.GRACE
    return Outcome.REUSE
