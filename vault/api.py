"""What the rest of tokengate asks of the vault: tokenize, detokenize, delete.

The engine (:mod:`vault.engine`) implements :class:`TokenVault` over a
:class:`~vault.store.VaultStore` and the keyring; plugins depend on this
Protocol only. Items carry their own class, so one call (one store round
trip) can serve every rule of a message.

Per-item failures are values: :class:`FormatMismatch` on tokenize (only when
the class says ``on_mismatch: error``), :class:`Refused` on detokenize. A
raised :class:`~vault.errors.VaultError` means the whole call failed: the
message fails closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from vault.errors import FormatMismatch

__all__ = [
    "ClassSpec",
    "DetokenizeItem",
    "FormatKind",
    "FormatMismatch",
    "RecordInfo",
    "Refused",
    "Revealed",
    "TokenFormat",
    "TokenVault",
    "TokenizeItem",
    "audit_id",
]


class FormatKind(StrEnum):
    """Token formats of DESIGN.md "Tokens and the vault record"."""

    OPAQUE = "opaque"
    UUID = "uuid"
    NUMERIC = "numeric"
    PAN = "pan"
    SSN = "ssn"
    DETERMINISTIC = "deterministic"


@dataclass(frozen=True, slots=True)
class TokenFormat:
    """How tokens of one field class look (validated by the policy model)."""

    kind: FormatKind = FormatKind.OPAQUE
    prefix: str = "tok"  # opaque and deterministic tokens: ``<prefix>_<t><body>``
    keep_first: int = 0  # numeric / pan / ssn: leading digits kept from the value
    keep_last: int = 0  # numeric / pan / ssn: trailing digits kept from the value
    luhn_valid: bool = False  # pan: explicit opt-in to Luhn-valid tokens
    on_mismatch: Literal["error", "opaque"] = "error"  # value does not fit the shape


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """A field class (``ssn``, ``pan``, ``email``) as the vault needs it."""

    name: str
    format: TokenFormat = TokenFormat()
    ttl: int | None = None  # seconds; None = persistent record


@dataclass(frozen=True, slots=True)
class TokenizeItem:
    """One value to tokenize, with the metadata bound into its record."""

    value: str = field(repr=False)
    spec: ClassSpec
    owner: str | None  # the session's sub; None on unauthenticated routes
    tenant: str  # "" when the deployment has no tenants


@dataclass(frozen=True, slots=True)
class DetokenizeItem:
    """One token to resolve, read by the rule of class ``spec``."""

    token: str = field(repr=False)
    spec: ClassSpec


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """A record's authenticated metadata (what authorizers decide on)."""

    field_class: str
    format: str
    owner: str | None
    tenant: str
    created: int
    expires: int | None
    record_version: int


@dataclass(frozen=True, slots=True)
class Revealed:
    """A detokenized value and the record it came from."""

    value: str = field(repr=False)
    record: RecordInfo
    id_hash: str  # audit_id(record id)


@dataclass(frozen=True, slots=True)
class Refused:
    """A token that did not resolve; one opaque reason, never the token."""

    reason: Literal["malformed", "unknown", "refused"]
    id_hash: str | None = None  # known once the token parsed


def audit_id(record_id: bytes) -> str:
    """The record id as audit logs name it: hex SHA-256, first 32 characters."""
    return hashlib.sha256(record_id).hexdigest()[:32]


class TokenVault(Protocol):
    """Tokenize and detokenize whole batches in one store round trip."""

    async def tokenize(self, items: Sequence[TokenizeItem]) -> list[str | FormatMismatch]:
        """Tokens for ``items``, same length and order, returned only once durably stored."""
        ...

    async def detokenize(self, items: Sequence[DetokenizeItem]) -> list[Revealed | Refused]:
        """Values for ``items``, same length and order."""
        ...

    async def delete(self, items: Sequence[DetokenizeItem]) -> int:
        """Erase the records behind these tokens; how many existed."""
        ...

    async def are_tokens(self, items: Sequence[DetokenizeItem]) -> list[bool]:
        """True where the text is a token of its class whose record exists.

        Shape-preserving tokens look like values, so only the vault can say;
        the migration uses this to leave already-tokenized values alone.
        """
        ...
