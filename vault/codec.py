"""The token codec: which layout each format uses, how a token is made and read back.

Rules (the layouts themselves are stated in :mod:`vault.tokens` and
:mod:`vault.formats`; docs/tokens.md says what each format leaks):
- ``opaque``: ``<prefix>_<t><body>``, ``S`` = 20 bytes from the RNG, ``t`` the
  primary index version.
- ``deterministic``: the same layout, ``S`` = the convergent secret of
  (tenant, class, value), so equal inputs give equal tokens while the
  convergent and index primaries stay the same.
- ``uuid``: a UUIDv4 whose 16 bytes are ``S``; index version configured.
- ``numeric`` / ``pan`` / ``ssn``: the shape of the value; no ``S`` in the
  token (the record carries a random data key); index version configured.
- A shape-preserving class with ``on_mismatch: opaque`` gives values that do
  not fit an opaque token, and reads tokens of either layout.
- A class is checked once before first use (:func:`check_class`): a prefix
  that could not start a token, a negative TTL or options that do not belong
  to the format are configuration errors, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vault.api import ClassSpec, FormatKind, TokenFormat
from vault.errors import VaultConfigError
from vault.formats import SHAPED, check_shaped, looks_shaped, shaped_token
from vault.tokens import (
    SECRET_BYTES,
    UUID_BYTES,
    read_tagged,
    read_uuid,
    tagged_token,
    uuid_token,
    valid_prefix,
)

type Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Minted:
    """A new token, the secret its inner key comes from (None: carried data key), its index key."""

    token: str = field(repr=False)
    secret: bytes | None = field(repr=False)
    index_version: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """A token read back: canonical text, the format it was made by, its secret and index key."""

    text: str = field(repr=False)
    kind: FormatKind
    secret: bytes | None = field(repr=False)
    index_version: int


def check_class(spec: ClassSpec) -> None:
    """VaultConfigError if ``spec`` cannot make or read tokens; call once at configuration."""
    fmt = spec.format
    where = f"vault: class '{spec.name}'"
    if not spec.name:
        raise VaultConfigError("vault: a field class needs a name")
    if spec.ttl is not None and spec.ttl <= 0:
        raise VaultConfigError(f"{where}: ttl must be a positive number of seconds")
    if not valid_prefix(fmt.prefix):
        raise VaultConfigError(f"{where}: token prefix must be 1-32 of [a-z0-9-], from a letter")
    if fmt.on_mismatch not in ("error", "opaque"):
        raise VaultConfigError(f"{where}: on_mismatch must be 'error' or 'opaque'")
    if fmt.kind in SHAPED:
        try:
            check_shaped(fmt)
        except VaultConfigError as e:
            raise VaultConfigError(f"{where}: {str(e).removeprefix('vault: ')}") from e
    elif fmt.keep_first or fmt.keep_last or fmt.luhn_valid:
        raise VaultConfigError(
            f"{where}: keep_first, keep_last and luhn_valid apply to numeric, pan and ssn only"
        )


def mint(
    kind: FormatKind,
    fmt: TokenFormat,
    value: str,
    rng: Rng,
    *,
    tagged_version: int,
    untagged_version: int,
    convergent: bytes | None = None,
) -> Minted:
    """A fresh token of ``kind`` for ``value`` (``convergent``: S of a deterministic token)."""
    if kind is FormatKind.OPAQUE:
        secret = rng(SECRET_BYTES)
        return Minted(tagged_token(fmt.prefix, tagged_version, secret), secret, tagged_version)
    if kind is FormatKind.DETERMINISTIC:
        if convergent is None:
            raise ValueError("vault: a deterministic token needs its convergent secret")
        return Minted(
            tagged_token(fmt.prefix, tagged_version, convergent), convergent, tagged_version
        )
    if kind is FormatKind.UUID:
        token, secret = uuid_token(rng(UUID_BYTES))
        return Minted(token, secret, untagged_version)
    return Minted(shaped_token(value, fmt, rng), None, untagged_version)


def parse(token: str, fmt: TokenFormat, untagged_version: int) -> Parsed | None:
    """``token`` read by a class of format ``fmt``, or None if it is none of its tokens."""
    kind = fmt.kind
    if kind is FormatKind.OPAQUE or kind is FormatKind.DETERMINISTIC:
        tagged = read_tagged(fmt.prefix, token)
        return None if tagged is None else Parsed(token, kind, tagged[0], tagged[1])
    if kind is FormatKind.UUID:
        u = read_uuid(token)
        return None if u is None else Parsed(u[0], kind, u[1], untagged_version)
    if looks_shaped(token, fmt):
        return Parsed(token, kind, None, untagged_version)
    if fmt.on_mismatch == "opaque":
        tagged = read_tagged(fmt.prefix, token)
        if tagged is not None:
            return Parsed(token, FormatKind.OPAQUE, tagged[0], tagged[1])
    return None
