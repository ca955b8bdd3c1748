"""Single-use MFA recovery codes: their format, generation and keyed hashes.

Rules:
- A code is 10 characters of Crockford base32 (``0-9a-z`` without i, l, o, u),
  shown as two groups of five (``k3v9q-8tmw2``): 50 bits from the keyring RNG.
  Each character is one random byte masked to 5 bits (256 is a multiple of
  32, so the characters are uniform).
- Input is normalised before hashing: case folded, spaces and hyphens
  dropped, ``i``/``l`` read as ``1`` and ``o`` as ``0`` (what people mistype).
- Only a keyed hash is stored: HMAC-SHA256 under a key the caller derives from
  the keyring (purpose ``mfa-secrets``), over a length-framed encoding of a
  domain label, the subject and the normalised code. A keyed hash, not scrypt:
  50 random bits cannot be searched offline without the key, and the key
  never leaves the keyring's process; one HMAC per attempt keeps verification
  cheap enough to compare against every stored code. Binding the subject
  means a stolen hash row cannot be moved to another user.
- :func:`find` compares the candidate with every stored hash in constant time
  and never stops early; consuming the match (single use) is the store's
  atomic delete, so two concurrent uses of one code cannot both succeed.

Pure: no IO; randomness comes from the ``random_bytes`` the caller passes
(``kms_client.rng.random_bytes`` in the gateway).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Sequence

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
CODE_LENGTH = 10
GROUP = 5
DEFAULT_COUNT = 10
MAX_COUNT = 32
DIGEST_LABEL = b"tokengate/mfa/recovery-code/v1"
KEY_INFO = b"tokengate/mfa/recovery-code-key/v1"

_READ_AS = {"i": "1", "l": "1", "o": "0"}


def generate(random_bytes: Callable[[int], bytes], *, count: int = DEFAULT_COUNT) -> list[str]:
    """``count`` fresh, distinct codes in canonical form (see :func:`display`)."""
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"recovery codes: count must be between 1 and {MAX_COUNT}")
    codes: list[str] = []
    while len(codes) < count:
        raw = random_bytes(CODE_LENGTH)
        if len(raw) != CODE_LENGTH:
            raise ValueError("recovery codes: the rng returned the wrong number of bytes")
        code = "".join(ALPHABET[b & 0x1F] for b in raw)
        if code not in codes:
            codes.append(code)
    return codes


def display(canonical: str) -> str:
    """A canonical code as shown to the user: two groups of five (``xxxxx-xxxxx``)."""
    return f"{canonical[:GROUP]}-{canonical[GROUP:]}"


def normalize(code: str) -> str | None:
    """The canonical form of what a user typed, or None if it cannot be a code."""
    chars = []
    for ch in code.strip().lower():
        if ch in " -":
            continue
        chars.append(_READ_AS.get(ch, ch))
    canonical = "".join(chars)
    if len(canonical) != CODE_LENGTH or any(c not in ALPHABET for c in canonical):
        return None
    return canonical


def digest(key: bytes, subject: str, canonical: str) -> bytes:
    """HMAC-SHA256 of a normalised code, bound to ``subject`` (see the module rules)."""
    if len(key) < 32:
        raise ValueError("recovery codes: the hash key must be at least 32 bytes")
    message = b"".join(
        _framed(part) for part in (DIGEST_LABEL, subject.encode("utf-8"), canonical.encode())
    )
    return hmac.new(key, message, hashlib.sha256).digest()


def find(stored: Sequence[bytes], candidate: bytes) -> bytes | None:
    """The stored digest equal to ``candidate``, comparing against all in constant time."""
    found: bytes | None = None
    for entry in stored:
        if hmac.compare_digest(entry, candidate):
            found = entry
    return found


def _framed(part: bytes) -> bytes:
    return struct.pack(">I", len(part)) + part
