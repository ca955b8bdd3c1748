"""RFC 9530 ``Content-Digest``: a hash of the message content, as the signature covers it.

Rules for verification:

- The field is an RFC 8941 dictionary of byte sequences keyed by algorithm.
- Only ``sha-256`` and ``sha-512`` count (a caller may narrow that); the
  deprecated or insecure ones (md5, sha, unixsum, crc32c, ...) are ignored,
  and a field with no accepted algorithm fails.
- Every accepted algorithm present must match the body; one good and one bad
  digest is a failure, not a pass.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from typing import Final

from proxy.proof.errors import ProofError
from proxy.proof.structured import Item, parse_dictionary, serialize_dictionary

_HASHES: Final[dict[str, Callable[[bytes], bytes]]] = {
    "sha-256": lambda data: hashlib.sha256(data).digest(),
    "sha-512": lambda data: hashlib.sha512(data).digest(),
}
ACCEPTED: Final = frozenset(_HASHES)


def content_digest(body: bytes, algorithms: Sequence[str] = ("sha-256",)) -> str:
    """The ``Content-Digest`` value of ``body`` (sha-256 unless told otherwise)."""
    if not algorithms or any(a not in _HASHES for a in algorithms):
        raise ValueError("digest: algorithms must be sha-256 and/or sha-512")
    return serialize_dictionary({a: Item(_HASHES[a](body)) for a in algorithms})


def verify_content_digest(header: str, body: bytes, *, accepted: frozenset[str] = ACCEPTED) -> None:
    """Raise :class:`ProofError` unless ``header`` proves ``body`` (see module rules)."""
    if not accepted or not accepted <= ACCEPTED:
        raise ValueError("digest: accepted algorithms must be sha-256 and/or sha-512")
    members = parse_dictionary(header)
    checked = 0
    for algorithm, member in members.items():
        if algorithm not in accepted:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise ProofError("digest: value is not a byte sequence")
        expected = _HASHES[algorithm](body)
        if not hmac.compare_digest(expected, member.value):
            raise ProofError("digest: mismatch")
        checked += 1
    if checked == 0:
        raise ProofError("digest: no accepted algorithm")
