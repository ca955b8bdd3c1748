"""Admin API keys: how they are made, stored, looked up and what their roles allow.

A key is ``tga_`` followed by the unpadded lowercase base32 of 32 bytes from
:func:`kms_client.rng.random_bytes` (256 bits). Only its SHA-256 is stored, in
``admin.api.keys``. A fast hash is right here and a slow password hash would
add nothing: a slow hash defends low-entropy secrets against guessing, and
nobody can guess or enumerate a 256-bit random value, while the table stays
cheap to check on every request.

Lookup is constant-time over the table: the presented key is hashed once and
compared with ``hmac.compare_digest`` against every stored digest, with no early
exit, so response time says nothing about which digest (if any) matched.

Roles are ordered: ``auditor`` reads (lists sessions, the OpenAPI document),
``operator`` also revokes a session or a user, ``admin`` also revokes all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from kms_client.rng import random_bytes

KEY_PREFIX: Final = "tga_"
KEY_BYTES: Final = 32
KEY_RE: Final = re.compile(r"tga_[a-z2-7]{52}")


class Role(StrEnum):
    """What a key may do; each role includes every weaker one."""

    AUDITOR = "auditor"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Strength: auditor 0, operator 1, admin 2."""
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        """Whether this role includes ``required``."""
        return self.rank >= required.rank


_RANK: Final = {Role.AUDITOR: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def new_api_key() -> str:
    """A fresh key (shown once to its owner; only :func:`key_digest` of it is stored)."""
    body = base64.b32encode(random_bytes(KEY_BYTES)).decode("ascii").rstrip("=").lower()
    return KEY_PREFIX + body


def key_digest(key: str) -> str:
    """The hex SHA-256 stored for ``key`` (see the module docstring for why not a slow hash)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_api_key(value: str) -> bool:
    """Whether ``value`` has the shape of an admin API key."""
    return bool(KEY_RE.fullmatch(value))


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: its name (for audit), role and stored digest."""

    name: str
    role: Role
    sha256: str


class KeyTable:
    """The configured keys, looked up in constant time by the key a caller presents."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple(keys)
        self._digests = tuple(bytes.fromhex(k.sha256) for k in self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, presented: str) -> ApiKey | None:
        """The key whose digest matches ``presented``, else None; compares against all."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = -1
        for i, stored in enumerate(self._digests):
            match = hmac.compare_digest(stored, digest)  # no early exit: check every entry
            found = i if match else found
        return self._keys[found] if found >= 0 else None
