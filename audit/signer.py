"""Checkpoint signers: the protocol the audit log signs through, and a local key file.

The audit log never chooses its own key: the caller hands a signer in. Today
that is :class:`Ed25519CheckpointSigner` on a PEM file under the data dir;
once key management lands, the keyring's ``audit-checkpoint`` purpose
provides one with the same three members.

The local key file is PKCS#8 PEM, unencrypted, mode 0600 in a 0700
directory. ``load_or_create`` (development) makes it if absent, safely when
several workers start at once; ``load`` (production) requires it and refuses
a file that others can read or anyone but its owner can write.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from audit.errors import AuditKeyError
from audit.keys import public_jwk, read_key_file, thumbprint


class CheckpointSigner(Protocol):
    """What the audit log needs from the audit-checkpoint key."""

    @property
    def kid(self) -> str:
        """RFC 7638 JWK thumbprint of the public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        ...

    def public_jwk(self) -> dict[str, str]:
        """``{"kty": "OKP", "crv": "Ed25519", "x": ..., "kid": ...}``."""
        ...


class Ed25519CheckpointSigner:
    """A checkpoint signer on a local Ed25519 private key."""

    __slots__ = ("_kid", "_private")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self._kid = thumbprint(private_key.public_key())

    def __repr__(self) -> str:
        return f"Ed25519CheckpointSigner(kid={self._kid!r})"

    @classmethod
    def generate(cls) -> Ed25519CheckpointSigner:
        """A signer on a fresh in-memory key (tests, tools)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> Ed25519CheckpointSigner:
        """The signer in an existing PEM file (production); refuses loose permissions."""
        try:
            info = path.stat()
        except FileNotFoundError as e:
            raise AuditKeyError(f"audit: checkpoint key {path} does not exist") from e
        except OSError as e:
            raise AuditKeyError(f"audit: cannot read checkpoint key {path} ({e.strerror})") from e
        if not stat.S_ISREG(info.st_mode):
            raise AuditKeyError(f"audit: checkpoint key {path} is not a regular file")
        if info.st_mode & (stat.S_IRWXO | stat.S_IWGRP):
            raise AuditKeyError(
                f"audit: checkpoint key {path} is readable by others or writable by its group"
                " (chmod 600)"
            )
        return cls(_parse(path, read_key_file(path, label="checkpoint key")))

    @classmethod
    def load_or_create(cls, path: Path) -> Ed25519CheckpointSigner:
        """The signer in ``path``, created (0600) if absent: the development default."""
        if not path.exists():
            _create(path)
        return cls.load(path)

    @property
    def kid(self) -> str:
        """RFC 7638 thumbprint of the public key."""
        return self._kid

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def public_key(self) -> Ed25519PublicKey:
        """The public half, for verifiers."""
        return self._private.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``."""
        return public_jwk(self._private.public_key())


def _parse(path: Path, data: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM ``data``."""
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise AuditKeyError(f"audit: checkpoint key {path} is not an unencrypted pem key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"audit: checkpoint key {path} is not an ed25519 private key")
    return key


def _create(path: Path) -> None:
    """Write a fresh key to ``path`` atomically; a concurrent creator's key wins, never mixes."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another worker created it first: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
