"""LocalRootKey: a root key held by this host (``local:`` root URIs).

The 32-byte root secret ``R`` comes from a file, an environment variable, a
passphrase (scrypt, N=2^17 r=8 p=1, salt in the key table) or Shamir shares
given at unseal. KWKs are not derivable from ``R`` alone: each lives in a key
table file (default ``<data_dir>/kms/root-kwks.json``, 0600) wrapped under
``HKDF(R, "tokengate/local-root/kwk-wrap/v1")`` with AES-256-GCM, its AAD
binding the entry id and KWK version. The reference stored with the keyring is
only the entry id, so destroying a KWK (removing its entry) makes every old
keyring copy useless even to someone holding ``R``, exactly as an HSM would.
A local root therefore serves one host (or hosts sharing its data dir);
replicas on several hosts use ``pkcs11:`` or ``aws-kms://``.

The table carries ``check = HMAC-SHA256(R, "tokengate/local-root/check/v1")``
so a wrong file, passphrase or share set is named as such at start-up.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from kms_client import rng, shamir
from kms_client.atomic_file import locked, write_atomic
from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from tokengate.errors import ConfigError

log = logging.getLogger(__name__)

FORMAT = "tokengate-local-root/1"
SOURCES = ("dev", "file", "env", "passphrase-env", "passphrase-file", "shamir")
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_MIN_PASSPHRASE = 12
_WARNED: set[Path] = set()

type _Table = dict[str, object]


@dataclass(frozen=True)
class LocalRootSpec:
    """Where the root secret comes from; ``location`` is a path or a variable name."""

    source: str
    location: str
    table: Path


class LocalRootKey:
    """Root secret on this host; KWKs in a key table that a destroy really shreds."""

    def __init__(self, spec: LocalRootSpec, *, environ: Mapping[str, str] | None = None) -> None:
        if spec.source not in SOURCES:
            raise ConfigError(f"keys.root: unknown local source '{spec.source}'")
        self._spec = spec
        self._environ = os.environ if environ is None else environ
        self._secret: bytes | None = None
        self._shares: list[shamir.Share] | None = None
        self._scrypt: dict[str, object] | None = None

    @property
    def description(self) -> str:
        """``local:<source>=<path or variable>``; never the secret."""
        if self._spec.source in ("dev", "shamir"):
            return f"local:{self._spec.source} (table {self._spec.table})"
        return f"local:{self._spec.source}={self._spec.location}"

    @property
    def is_dev_default(self) -> bool:
        """True for the auto-created development root file (refused in production)."""
        return self._spec.source == "dev"

    @property
    def needs_shares(self) -> bool:
        """True while a Shamir root waits for its shares."""
        return self._spec.source == "shamir" and self._shares is None and self._secret is None

    def provide_shares(self, shares: list[shamir.Share]) -> None:
        """Hand in Shamir shares; checked against the key table by :meth:`open`."""
        if self._spec.source != "shamir":
            raise ConfigError("keys.root: shares are only used with 'local:shamir'")
        self._shares = list(shares)

    async def open(self) -> None:
        """Obtain the root secret and check it against the key table."""
        try:
            self._secret = await asyncio.to_thread(self._open_sync)
        finally:
            self._shares = None  # used once, right or wrong

    async def close(self) -> None:
        """Forget the root secret."""
        self._secret = None

    async def create_kwk(self, version: int) -> tuple[bytes, bytes]:
        """A fresh KWK stored wrapped in the table; the reference is its entry id."""
        secret, kwk, entry = self._need(), rng.random_bytes(32), rng.random_bytes(16)
        nonce = rng.random_bytes(12)
        wrapped = nonce + AESGCM(_wrap_key(secret)).encrypt(nonce, kwk, _aad(entry, version))

        def add(table: _Table) -> None:
            _kwks(table)[entry.hex()] = {"version": version, "wrapped": _b64(wrapped)}

        await asyncio.to_thread(self._update, add)
        return kwk, entry

    async def open_kwk(self, version: int, reference: bytes) -> bytes:
        """Unwrap KWK ``version``; WrongRoot if the table has no such entry."""
        secret = self._need()
        table = await asyncio.to_thread(self._read_table)
        entry = None if table is None else _kwks(table).get(reference.hex())
        if not isinstance(entry, dict) or entry.get("version") != version:
            raise WrongRoot(
                f"kms: local root: kwk v{version} is not in key table {self._spec.table}"
                " (destroyed, made under another root, or on another host)"
            )
        try:
            blob = base64.b64decode(str(entry["wrapped"]), validate=True)
            return AESGCM(_wrap_key(secret)).decrypt(blob[:12], blob[12:], _aad(reference, version))
        except (InvalidTag, KeyError, binascii.Error, ValueError) as e:
            raise WrongRoot(f"kms: local root: kwk v{version} does not open under this root") from e

    async def destroy_kwk(self, version: int, reference: bytes) -> None:
        """Remove the table entry for good (atomic replace, fsync)."""
        self._need()

        def drop(table: _Table) -> None:
            _kwks(table).pop(reference.hex(), None)

        await asyncio.to_thread(self._update, drop)

    async def random(self, n: int) -> bytes | None:
        """A local root has no RNG of its own."""
        return None

    def split(self, *, shares: int, threshold: int) -> list[shamir.Share]:
        """WARNING: hands out the root secret in shares; only for ``tokengate kms split``."""
        return shamir.split(self._need(), shares=shares, threshold=threshold)

    @classmethod
    def create_shamir(cls, table: Path, *, shares: int, threshold: int) -> list[shamir.Share]:
        """Make a new root secret, start its key table, and return its shares (nothing kept)."""
        if table.exists():
            raise ConfigError(f"keys.root: key table {table} already exists; split the root in it")
        secret = rng.random_bytes(32)
        out = shamir.split(secret, shares=shares, threshold=threshold)
        with locked(table):
            write_atomic(
                table, _dump({"format": FORMAT, "check": _b64(_check(secret)), "kwks": {}})
            )
        return out

    def _need(self) -> bytes:
        if self._secret is None:
            raise RootError("kms: local root is not open")
        return self._secret

    def _open_sync(self) -> bytes:
        source, table_path = self._spec.source, self._spec.table
        with locked(table_path):
            table = self._read_table()
            if source == "dev" and table is None:
                _create_dev_file(Path(self._spec.location))
            secret = self._secret_from(table)
            if table is None:
                if source == "shamir":
                    raise RootUnavailable(
                        f"kms: local root: no key table at {table_path};"
                        " run 'tokengate kms split' to create a shared root"
                    )
                table = _new_table(secret)
                self._extra_fields(table)
                write_atomic(table_path, _dump(table))
            expected = base64.b64decode(str(table.get("check", "")))
            if not hmac.compare_digest(expected, _check(secret)):
                raise self._mismatch()
        return secret

    def _secret_from(self, table: _Table | None) -> bytes:
        source, where = self._spec.source, self._spec.location
        if source in ("dev", "file"):
            return _decode_key(_read_private_file(Path(where)), f"root file {where}")
        if source == "env":
            value = self._environ.get(where)
            if not value:
                raise RootUnavailable(f"kms: local root: environment variable {where} is not set")
            return _decode_key(value, f"environment variable {where}")
        if source == "shamir":
            if self._shares is None:
                raise RootAuthError("kms: local root: waiting for shares (tokengate kms unseal)")
            return shamir.combine(self._shares)
        return self._from_passphrase(table)

    def _from_passphrase(self, table: _Table | None) -> bytes:
        where = self._spec.location
        if self._spec.source == "passphrase-env":
            phrase = self._environ.get(where, "")
            if not phrase:
                raise RootUnavailable(f"kms: local root: environment variable {where} is not set")
        else:
            phrase = _read_private_file(Path(where)).rstrip("\r\n")
        if len(phrase) < _MIN_PASSPHRASE:
            raise ConfigError(f"keys.root: passphrase shorter than {_MIN_PASSPHRASE} characters")
        found = table.get("scrypt") if table is not None else None
        params: dict[str, object] = (
            found if isinstance(found, dict) else {**_SCRYPT, "salt": _b64(rng.random_bytes(16))}
        )
        self._scrypt = params
        try:
            salt = base64.b64decode(str(params["salt"]), validate=True)
            n, r, p = (_int(params[k]) for k in ("n", "r", "p"))
        except (KeyError, ValueError, binascii.Error) as e:
            raise RootError(f"kms: local root: key table {self._spec.table} is corrupt") from e
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(phrase.encode("utf-8"))

    def _extra_fields(self, table: _Table) -> None:
        if self._scrypt is not None:
            table["scrypt"] = self._scrypt

    def _mismatch(self) -> RootError:
        table, source = self._spec.table, self._spec.source
        if source.startswith("passphrase"):
            return RootAuthError(f"kms: local root: wrong passphrase (key table {table})")
        if source == "shamir":
            return RootAuthError(f"kms: local root: shares do not rebuild the root of {table}")
        return WrongRoot(
            f"kms: local root key from {self.description} does not match key table {table}"
            " (keyring made under another root)"
        )

    def _read_table(self) -> _Table | None:
        try:
            raw = self._spec.table.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise RootUnavailable(f"kms: local root: cannot read {self._spec.table}") from e
        try:
            table = json.loads(raw)
        except ValueError as e:
            raise RootError(f"kms: local root: key table {self._spec.table} is corrupt") from e
        if not isinstance(table, dict) or table.get("format") != FORMAT:
            raise RootError(f"kms: local root: key table {self._spec.table} is corrupt")
        return table

    def _update(self, change: Callable[[_Table], None]) -> None:
        with locked(self._spec.table):
            table = self._read_table()
            if table is None:
                raise RootUnavailable(f"kms: local root: key table {self._spec.table} vanished")
            change(table)
            try:
                write_atomic(self._spec.table, _dump(table))
            except OSError as e:
                raise RootUnavailable(f"kms: local root: cannot write {self._spec.table}") from e


def _create_dev_file(path: Path) -> None:
    if path.exists():
        return
    if path not in _WARNED:
        _WARNED.add(path)
        log.warning("kms: created development root key %s; set keys.root for production", path)
    write_atomic(path, base64.b64encode(rng.random_bytes(32)) + b"\n")


def _read_private_file(path: Path) -> str:
    try:
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise RootError(f"kms: local root: {path} is readable by others (chmod 600 it)")
        return path.read_text("utf-8")
    except FileNotFoundError as e:
        raise RootUnavailable(f"kms: local root: {path} does not exist") from e
    except OSError as e:
        raise RootUnavailable(f"kms: local root: cannot read {path}") from e


def _decode_key(text: str, where: str) -> bytes:
    value = text.strip()
    try:
        key = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as e:
        raise RootError(f"kms: local root: {where} is not a base64 or hex 32-byte key") from e
    if len(key) != 32:
        raise RootError(f"kms: local root: {where} is not a base64 or hex 32-byte key")
    return key


def _new_table(secret: bytes) -> _Table:
    return {"format": FORMAT, "check": _b64(_check(secret)), "kwks": {}}


def _int(raw: object) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ValueError("expected an integer")
    return raw


def _kwks(table: _Table) -> dict[str, object]:
    kwks = table.setdefault("kwks", {})
    if not isinstance(kwks, dict):
        raise RootError("kms: local root: key table is corrupt")
    return kwks


def _wrap_key(secret: bytes) -> bytes:
    info = b"tokengate/local-root/kwk-wrap/v1"
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)


def _check(secret: bytes) -> bytes:
    return hmac.new(secret, b"tokengate/local-root/check/v1", hashlib.sha256).digest()


def _aad(entry: bytes, version: int) -> bytes:
    return b"tokengate/local-root/kwk/v1|" + entry + version.to_bytes(4, "big")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _dump(table: _Table) -> bytes:
    return json.dumps(table, sort_keys=True, indent=1).encode("utf-8")
