"""The one RNG every part of tokengate calls for key material, nonces and token bodies.

``random_bytes(n)`` reads ``os.urandom`` until a better source is installed:
at unseal, when the root backend offers its own RNG (an HSM's
``C_GenerateRandom``), the key manager installs an HSM-augmented DRBG
(``kms_client.drbg``) here, so callers never change and never make an HSM call
per token. Sealing uninstalls it again.

A source must be thread-safe and must never return fewer bytes than asked; if
it raises, the caller fails closed (there is no silent fallback to urandom
once a source is installed).
"""

from __future__ import annotations

import os
import threading
from typing import Protocol


class RandomSource(Protocol):
    """A cryptographically secure byte source."""

    @property
    def name(self) -> str:
        """Short description for logs and metrics, e.g. ``hkdf-drbg+pkcs11``."""
        ...

    def random_bytes(self, n: int) -> bytes:
        """Exactly ``n`` random bytes."""
        ...


class _OsRandom:
    """The operating system's CSPRNG."""

    name = "os.urandom"

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)


class _Installed:
    """The process-wide source; swapped under a lock, read without one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.source: RandomSource = _OS


_OS = _OsRandom()
_installed = _Installed()


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the installed source (``os.urandom`` by default)."""
    if n < 0:
        raise ValueError("rng: negative length")
    out = _installed.source.random_bytes(n)
    if len(out) != n:
        raise RuntimeError("rng: source returned the wrong number of bytes")
    return out


def install(source: RandomSource) -> None:
    """Make ``source`` the RNG of the whole process (done at unseal)."""
    with _installed.lock:
        _installed.source = source


def uninstall(source: RandomSource | None = None) -> None:
    """Go back to ``os.urandom``; with ``source`` only if that one is still installed."""
    with _installed.lock:
        if source is None or _installed.source is source:
            _installed.source = _OS


def source_name() -> str:
    """Name of the installed source, for health output."""
    return _installed.source.name
