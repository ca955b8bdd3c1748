"""Shamir secret sharing of the local root key (threshold k of n) over GF(2^8).

Rules:
- Each byte of the secret is the constant term of its own random polynomial
  of degree k-1 over GF(2^8) (AES polynomial x^8+x^4+x^3+x+1); share ``x``
  (1..n) holds the polynomials' values at ``x``. Any k shares give the secret
  back by Lagrange interpolation at 0; fewer reveal nothing about it.
- A share's text form is ``tgshare1-<set>-<k>-<x>-<data>-<check>``: ``set`` is
  a random 8-hex-digit id common to one split (so shares of two splits are
  never mixed), ``data`` is lowercase base32 without padding and ``check`` is
  the first 8 hex digits of SHA-256 over everything before it (catches typos).
- Combining checks shape, set, threshold and duplicates; whether the result
  is the right root key is checked by the root (its key table's check value).
- Table lookups are not constant time; splitting and combining happen once,
  offline or at unseal, never on the request path.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from kms_client import rng
from kms_client.errors import RootAuthError

_EXP = [0] * 512
_LOG = [0] * 256


def _tables() -> None:
    x = 1
    for i in range(255):
        _EXP[i] = x
        _LOG[x] = i
        x ^= (x << 1) ^ (0x11B if x & 0x80 else 0)  # multiply by the generator 3
        x &= 0xFF
    for i in range(255, 512):
        _EXP[i] = _EXP[i - 255]


_tables()


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if a == 0:
        return 0
    return _EXP[_LOG[a] + 255 - _LOG[b]]


@dataclass(frozen=True)
class Share:
    """One share of a split secret."""

    set_id: str
    threshold: int
    x: int
    data: bytes = field(repr=False)

    def encode(self) -> str:
        """The text form handed to a custodian."""
        body = base64.b32encode(self.data).decode("ascii").rstrip("=").lower()
        head = f"tgshare1-{self.set_id}-{self.threshold}-{self.x}-{body}"
        return f"{head}-{_check(head)}"

    @classmethod
    def parse(cls, text: str, *, position: int = 0) -> Share:
        """Parse a share's text form; RootAuthError naming the share if it is malformed."""
        where = f"share {position}" if position else "share"
        parts = text.strip().split("-")
        if len(parts) != 6 or parts[0] != "tgshare1":
            raise RootAuthError(f"kms: {where} is not a tokengate share")
        head = "-".join(parts[:5])
        if parts[5] != _check(head):
            raise RootAuthError(f"kms: {where} has a bad checksum (mistyped?)")
        try:
            threshold, x = int(parts[2]), int(parts[3])
            body = parts[4].upper()
            data = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError as e:
            raise RootAuthError(f"kms: {where} is malformed") from e
        if not 1 <= x <= 255 or not 2 <= threshold <= 255:
            raise RootAuthError(f"kms: {where} is malformed")
        return cls(parts[1], threshold, x, data)


def split(secret: bytes, *, shares: int, threshold: int) -> list[Share]:
    """Split ``secret`` into ``shares`` shares, any ``threshold`` of which recover it."""
    if not 2 <= threshold <= shares <= 255:
        raise ValueError("kms: shamir needs 2 <= threshold <= shares <= 255")
    set_id = rng.random_bytes(4).hex()
    coeffs = [rng.random_bytes(len(secret)) for _ in range(threshold - 1)]
    out = []
    for x in range(1, shares + 1):
        data = bytearray()
        for i, s in enumerate(secret):
            y, power = s, 1
            for c in coeffs:
                power = _mul(power, x)
                y ^= _mul(c[i], power)
            data.append(y)
        out.append(Share(set_id, threshold, x, bytes(data)))
    return out


def combine(shares: list[Share]) -> bytes:
    """The secret from at least ``threshold`` shares of one split; RootAuthError otherwise."""
    if not shares:
        raise RootAuthError("kms: no shares given")
    first = shares[0]
    if any(s.set_id != first.set_id or s.threshold != first.threshold for s in shares):
        raise RootAuthError("kms: shares come from different splits")
    if len({s.x for s in shares}) != len(shares):
        raise RootAuthError("kms: the same share was given twice")
    if any(len(s.data) != len(first.data) for s in shares):
        raise RootAuthError("kms: shares have different lengths")
    if len(shares) < first.threshold:
        raise RootAuthError(f"kms: {len(shares)} of {first.threshold} required shares given")
    use = shares[: first.threshold]
    secret = bytearray(len(first.data))
    for j, sj in enumerate(use):
        basis = 1
        for m, sm in enumerate(use):
            if m != j:
                basis = _mul(basis, _div(sm.x, sm.x ^ sj.x))
        for i in range(len(secret)):
            secret[i] ^= _mul(sj.data[i], basis)
    return bytes(secret)


def _check(head: str) -> str:
    return hashlib.sha256(head.encode("ascii")).hexdigest()[:8]
