"""Who is calling the relay: ``Proxy-Authorization: Basic`` checked against the client table.

A client secret is ``tge_`` followed by the unpadded lowercase base32 of 32
bytes from :func:`kms_client.rng.random_bytes` (256 bits); only its SHA-256
is configured (``egress.clients``). A fast hash is right for a 256-bit random
value, as for the admin API's keys (:mod:`proxy.adminapi.keys` says why).

The header carries ``base64(name ":" secret)`` (RFC 7617), which is what
``HTTPS_PROXY=http://name:secret@host:port`` makes every common client send.
Lookup hashes the presented secret once and compares it with every stored
digest (``hmac.compare_digest``, no early exit); the name must then be the
one configured with that secret. Pure: no IO, no mitmproxy. The presented
credentials never leave this module: failures carry a fixed reason only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from kms_client.rng import random_bytes
from proxy.egress.config import EgressClient

SECRET_PREFIX: Final = "tge_"  # noqa: S105 - a prefix, not a secret
SECRET_RE: Final = re.compile(r"tge_[a-z2-7]{52}")
MAX_HEADER: Final = 512  # longer than any well-formed name:secret pair


def new_client_secret() -> str:
    """A fresh secret (shown once to its owner; only :func:`secret_digest` of it is stored)."""
    body = base64.b32encode(random_bytes(32)).decode("ascii").rstrip("=").lower()
    return SECRET_PREFIX + body


def secret_digest(secret: str) -> str:
    """The hex SHA-256 configured for ``secret``."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated client: its name and roles (the detokenize rules' subject)."""

    name: str
    roles: frozenset[str]
    # The configured SHA-256 of its secret: after a reload, a connection bound to
    # this client is re-checked against the new table (not secret, never logged).
    credential: bytes = field(default=b"", repr=False, compare=False)

    @property
    def subject(self) -> str:
        """How field rules and the audit log name it: ``egress:<name>``.

        The prefix keeps a client from ever being taken for a user of the same
        name: ``owner: true`` never matches a relay client.
        """
        return f"egress:{self.name}"


class ClientTable:
    """The configured clients, looked up in constant time by the secret presented."""

    def __init__(self, clients: Iterable[EgressClient]) -> None:
        listed = tuple(clients)
        self._digests = tuple(bytes.fromhex(c.sha256) for c in listed)
        self._clients = tuple(
            Client(c.name, frozenset(c.roles), digest)
            for c, digest in zip(listed, self._digests, strict=True)
        )
        self._by_name = {c.name: c for c in self._clients}  # names are unique (config)

    def __len__(self) -> int:
        return len(self._clients)

    def authenticate(self, headers: Sequence[str]) -> Client | None:
        """The client the ``Proxy-Authorization`` values prove, or None."""
        parsed = _basic(headers)
        if parsed is None:
            return None
        name, secret = parsed
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
        found = -1
        for i, stored in enumerate(self._digests):
            match = hmac.compare_digest(stored, digest)  # no early exit: check every entry
            found = i if match else found
        if found < 0 or self._clients[found].name != name:  # names are not secret
            return None
        return self._clients[found]

    def current(self, client: Client) -> Client | None:
        """This table's entry for ``client`` (same name and secret), or None if it is gone.

        A connection authenticates once, at CONNECT; after a reload its client
        may have been removed, given another secret or other roles. Requests on
        the connection then act as the current entry, or are refused.
        """
        entry = self._by_name.get(client.name)
        if entry is None or not hmac.compare_digest(entry.credential, client.credential):
            return None
        return entry


def _basic(headers: Sequence[str]) -> tuple[str, str] | None:
    """(name, secret) of exactly one well-formed Basic credential, else None."""
    if len(headers) != 1 or len(headers[0]) > MAX_HEADER:
        return None
    scheme, _, encoded = headers[0].strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, secret = decoded.partition(":")
    if not sep or not name or not SECRET_RE.fullmatch(secret):
        return None
    return name, secret
