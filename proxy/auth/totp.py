"""TOTP (RFC 6238) codes, their verification, the otpauth URI and its QR code.

Rules:
- HOTP(K, C) = Truncate(HMAC-H(K, C)) mod 10^digits (RFC 4226 section 5.3),
  with C the 8-byte big-endian time step ``floor(unix_time / period)``
  (T0 = 0). H is SHA-1 by default (what every authenticator app supports);
  SHA-256 and SHA-512 are options. 6 digits and a 30 s period by default.
- Verification accepts exactly one step either side of the current one
  (:data:`WINDOW`): clock drift of up to one period, nothing more.
- All candidate codes are computed and compared in constant time; the result
  does not depend on which candidate matched first.
- A match returns the matched time step, never just ``True``: the caller must
  refuse a second use of that step (RFC 6238 section 5.2, replay).
- Secrets are at least 16 bytes (RFC 4226 section 4, R6); callers make them
  from the keyring RNG (20 bytes, the size of a SHA-1 block output).

Pure: no IO, no clock of its own (``now`` is an aware datetime the caller
passes). WARNING: the URI and the QR code carry the secret; they are shown to
the enrolling user once and must never be logged, cached or stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import struct
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

import segno

MIN_SECRET_BYTES = 16
WINDOW = 1


class TotpAlgorithm(StrEnum):
    """The HMAC hash, spelled as the otpauth ``algorithm`` parameter wants it."""

    SHA1 = "SHA1"
    SHA256 = "SHA256"
    SHA512 = "SHA512"


_HASHES = {
    TotpAlgorithm.SHA1: hashlib.sha1,
    TotpAlgorithm.SHA256: hashlib.sha256,
    TotpAlgorithm.SHA512: hashlib.sha512,
}


@dataclass(frozen=True)
class TotpParams:
    """Algorithm, number of digits and period of one TOTP credential."""

    algorithm: TotpAlgorithm = TotpAlgorithm.SHA1
    digits: int = 6
    period: int = 30

    def __post_init__(self) -> None:
        if self.digits not in (6, 7, 8):
            raise ValueError("totp: digits must be 6, 7 or 8")
        if not 15 <= self.period <= 120:
            raise ValueError("totp: period must be between 15 and 120 seconds")


def hotp(secret: bytes, counter: int, *, params: TotpParams) -> str:
    """The RFC 4226 code for ``counter``, zero-padded to ``params.digits``."""
    _check_secret(secret)
    if not 0 <= counter < 2**64:
        raise ValueError("totp: counter out of range")
    mac = hmac.new(secret, struct.pack(">Q", counter), _HASHES[params.algorithm]).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**params.digits).zfill(params.digits)


def time_step(now: datetime, *, period: int) -> int:
    """``floor(unix_time / period)`` for an aware datetime."""
    if now.tzinfo is None:
        raise ValueError("totp: now must be timezone-aware")
    return int(now.timestamp()) // period


def code_at(secret: bytes, now: datetime, *, params: TotpParams) -> str:
    """The code valid at ``now`` (what an authenticator app shows)."""
    return hotp(secret, time_step(now, period=params.period), params=params)


def verify(secret: bytes, code: str, *, now: datetime, params: TotpParams) -> int | None:
    """The time step ``code`` belongs to within :data:`WINDOW` of ``now``, or None.

    ``code`` must be exactly ``params.digits`` ASCII digits (callers strip
    spaces a user typed). When two steps in the window share a code (chance
    about 1e-6), the later step is returned so replay protection errs towards
    refusing.
    """
    current = time_step(now, period=params.period)
    wellformed = len(code) == params.digits and code.isascii() and code.isdigit()
    candidate = code.encode("ascii", "replace") if wellformed else b"\x00" * params.digits
    matched: int | None = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if step < 0:
            continue
        expected = hotp(secret, step, params=params).encode("ascii")
        if hmac.compare_digest(expected, candidate) and wellformed:
            matched = step
    return matched


def secret_base32(secret: bytes) -> str:
    """The secret as unpadded RFC 4648 base32, as authenticator apps expect it."""
    _check_secret(secret)
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def provisioning_uri(secret: bytes, *, issuer: str, account: str, params: TotpParams) -> str:
    """The ``otpauth://totp/...`` URI of the Key Uri Format.

    Label ``issuer:account`` with each part percent-encoded (spaces as %20,
    never ``+``), the colon literal; ``issuer`` repeated as a parameter; the
    parameters always spelled out so apps never guess defaults. Neither part
    may contain a colon (the format forbids it) nor be empty.
    """
    for name, value in (("issuer", issuer), ("account", account)):
        if not value or ":" in value or not value.isprintable():
            raise ValueError(f"totp: {name} must be non-empty printable text without ':'")
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    query = "&".join(
        (
            f"secret={secret_base32(secret)}",
            f"issuer={quote(issuer, safe='')}",
            f"algorithm={params.algorithm.value}",
            f"digits={params.digits}",
            f"period={params.period}",
        )
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str, *, scale: int = 4) -> str:
    """A standalone SVG document of ``uri`` as a QR code (error correction M).

    WARNING: the picture carries the secret; serve it with ``Cache-Control:
    no-store`` and never log it.
    """
    qr = segno.make_qr(uri, error="m", boost_error=False)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=scale, border=4, xmldecl=False, svgclass=None, lineclass=None)
    return out.getvalue().decode("utf-8")


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"totp: secret must be at least {MIN_SECRET_BYTES} bytes")
