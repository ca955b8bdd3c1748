"""Token layouts of the high-entropy formats: opaque, deterministic and uuid.

Rules (DESIGN.md, "Tokens and the vault record"; the known-answer vectors in
tests/vault/vectors/ pin them, and any change bumps
:data:`vault.record.RECORD_VERSION`):
- Opaque and deterministic tokens are ``<prefix>_<t><body>``: ``prefix`` is the
  class's (1-32 characters ``[a-z][a-z0-9-]*``), ``t`` one character of the
  lowercase RFC 4648 base32 alphabet naming the index-key version (``a`` = 1
  ... ``7`` = 32), ``body`` the 32-character lowercase unpadded base32 of the
  20-byte secret ``S``. Index versions above 32 cannot be named and are
  refused (:class:`IndexVersionError`): the index purpose is never rotated on
  a schedule, so 32 versions are decades of manual rotations.
- A uuid token is a canonical UUIDv4 (lowercase, 8-4-4-4-12, version nibble
  4, variant ``10``); ``S`` is its 16 bytes, 122 of them random bits. It
  cannot name an index version: the engine uses one configured version.
  Parsing accepts upper case and canonicalises it (UUID columns may print
  either).
- Parsing is strict otherwise: anything else is ``None`` (a malformed token).
  The record id is the HMAC of the canonical token text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vault.errors import VaultError

SECRET_BYTES = 20  # S of opaque and deterministic tokens: 160 bits
UUID_BYTES = 16
MAX_TAGGED_INDEX_VERSION = 32

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_PREFIX = re.compile(r"[a-z][a-z0-9-]{0,31}")
_BODY_LEN = 32  # base32 of 20 bytes, no padding
_TAGGED_REST = re.compile(r"[a-z2-7]{33}")  # ``t`` and the body
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# Base32 of exactly 20 bytes is the 160-bit big-endian integer of S written in
# 32 base-32 digits (160 = 32 * 5: no padding, no partial group), RFC 4648's
# alphabet standing for the digit values 0-31. So the body is read with int()
# after mapping that alphabet onto int's own base-32 digits (0-9a-v), and
# written ten bits (two characters) at a time: both in C, where
# base64.b32encode/b32decode loop in Python. tests/vault/test_tokens.py checks
# both against the base64 module.
_TO_INT_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")
_VERSION_OF = {c: i + 1 for i, c in enumerate(_ALPHABET)}
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)  # 10-bit value -> 2 characters
_PAIR_SHIFTS = tuple(range(SECRET_BYTES * 8 - 10, -1, -10))


class IndexVersionError(VaultError):
    """The primary index key is beyond what a token character can name."""


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A syntactically valid token: its canonical text, secret and index version."""

    text: str = field(repr=False)
    secret: bytes = field(repr=False)
    index_version: int


def valid_prefix(prefix: str) -> bool:
    """True if ``prefix`` may start tagged tokens."""
    return _PREFIX.fullmatch(prefix) is not None


def tagged_token(prefix: str, index_version: int, secret: bytes) -> str:
    """``<prefix>_<t><body>`` for a 20-byte ``secret`` under index key ``index_version``."""
    if not 1 <= index_version <= MAX_TAGGED_INDEX_VERSION:
        raise IndexVersionError(
            f"vault: index key version {index_version} cannot be named in a token (1-32)"
        )
    if len(secret) != SECRET_BYTES or not valid_prefix(prefix):
        raise ValueError("vault: bad token prefix or secret length")
    n = int.from_bytes(secret, "big")
    body = "".join([_PAIRS[(n >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])
    return f"{prefix}_{_ALPHABET[index_version - 1]}{body}"


def parse_tagged(prefix: str, token: str) -> ParsedToken | None:
    """The parts of a ``<prefix>_<t><body>`` token, or None if it is not one."""
    read = read_tagged(prefix, token)
    return None if read is None else ParsedToken(token, read[0], read[1])


def read_tagged(prefix: str, token: str) -> tuple[bytes, int] | None:
    """(secret, index version) of a ``<prefix>_<t><body>`` token, or None if it is not one."""
    at = len(prefix) + 1
    if (
        len(token) != at + 1 + _BODY_LEN
        or not token.startswith(prefix)
        or token[at - 1] != "_"
        or _TAGGED_REST.fullmatch(token, at) is None
    ):
        return None
    secret = int(token[at + 1 :].translate(_TO_INT_DIGITS), 32).to_bytes(SECRET_BYTES, "big")
    return secret, _VERSION_OF[token[at]]


def uuid_token(random16: bytes) -> tuple[str, bytes]:
    """A UUIDv4 token from 16 random bytes: (token, S) with version and variant bits set."""
    if len(random16) != UUID_BYTES:
        raise ValueError("vault: a uuid token needs 16 random bytes")
    raw = bytearray(random16)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    secret = bytes(raw)
    h = secret.hex()  # str(uuid.UUID(bytes=secret)), without building the object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", secret


def parse_uuid(token: str, index_version: int) -> ParsedToken | None:
    """The parts of a UUIDv4 token (any case), or None if it is not one."""
    read = read_uuid(token)
    return None if read is None else ParsedToken(read[0], read[1], index_version)


def read_uuid(token: str) -> tuple[str, bytes] | None:
    """(canonical text, secret) of a UUIDv4 token (any case), or None if it is not one."""
    text = token.lower()
    if _UUID.fullmatch(text) is None:
        return None
    return text, bytes.fromhex(text.replace("-", ""))
