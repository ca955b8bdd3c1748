"""FileKeyringStore: the keyring in a file for one host (the embedded default).

Files, all mode 0600 in a 0700 directory: ``<path>`` (the wrapped keyring and
its version), ``<path>.usage`` (encryption counters), ``<path>.secrets``
(wrapped secrets) and ``<path>.lock``. Writers hold an exclusive ``flock`` on
the lock file, so worker processes on one host compare-and-set safely; every
write is an atomic, fsynced replace (:mod:`kms_client.atomic_file`). All file
IO runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from pathlib import Path

from kms_client.atomic_file import locked, write_atomic
from kms_client.errors import KeyringConflict, KeyringError
from kms_client.store import StoredKeyring

type _Doc = dict[str, object]


class FileKeyringStore:
    """Keyring, counters and wrapped secrets in files next to each other."""

    def __init__(self, path: Path, *, name: str) -> None:
        self._path = path.absolute()
        self.name = name  # one file holds one keyring; the envelope header checks the name

    @property
    def description(self) -> str:
        """``file:`` and the keyring path."""
        return f"file:{self._path}"

    async def open(self) -> None:
        """Create the directory (0700) if needed."""
        await asyncio.to_thread(self._prepare)

    async def close(self) -> None:
        """Nothing to release."""

    async def load(self) -> StoredKeyring | None:
        """The keyring file's content, or None if it does not exist yet."""
        doc = await asyncio.to_thread(self._read, self._path)
        if doc is None:
            return None
        try:
            version, blob = doc["version"], base64.b64decode(str(doc["blob"]), validate=True)
        except (KeyError, binascii.Error) as e:
            raise KeyringError(f"kms: keyring file {self._path} is corrupt") from e
        if not isinstance(version, int):
            raise KeyringError(f"kms: keyring file {self._path} is corrupt")
        return StoredKeyring(version, blob)

    async def version(self) -> int | None:
        """The stored keyring version."""
        stored = await self.load()
        return None if stored is None else stored.version

    async def save(self, blob: bytes, *, version: int, expected: int | None) -> None:
        """Compare-and-set under the lock file."""

        def run() -> None:
            with locked(self._path):
                current = self._read(self._path)
                found = None if current is None else current.get("version")
                if found != expected:
                    raise KeyringConflict("kms: keyring changed underneath (another writer)")
                doc = {"version": version, "blob": base64.b64encode(blob).decode("ascii")}
                self._write(self._path, doc)

        await asyncio.to_thread(run)

    async def add_usage(self, purpose: str, key_version: int, count: int) -> int:
        """Add to one counter in the usage file."""
        key = f"{purpose}/{key_version}"
        totals: list[int] = []

        def update(doc: _Doc) -> None:
            total = _as_int(doc.get(key, 0)) + count
            doc[key] = total
            totals.append(total)

        await asyncio.to_thread(self._update, self._side("usage"), update)
        return totals[0]

    async def secret_get(self, purpose: str, name: str) -> bytes | None:
        """One secret from the secrets file."""
        doc = await asyncio.to_thread(self._read, self._side("secrets"))
        raw = _section(doc, purpose).get(name)
        return None if raw is None else base64.b64decode(str(raw))

    async def secret_put(self, purpose: str, name: str, value: bytes) -> None:
        """Create or overwrite one secret."""

        def update(doc: _Doc) -> None:
            _section(doc, purpose, create=True)[name] = base64.b64encode(value).decode("ascii")

        await asyncio.to_thread(self._update, self._side("secrets"), update)

    async def secret_replace(self, purpose: str, name: str, old: bytes, new: bytes) -> bool:
        """Overwrite only if the stored value is still ``old``."""
        done: list[bool] = []

        def update(doc: _Doc) -> None:
            section = _section(doc, purpose, create=True)
            ok = section.get(name) == base64.b64encode(old).decode("ascii")
            if ok:
                section[name] = base64.b64encode(new).decode("ascii")
            done.append(ok)

        await asyncio.to_thread(self._update, self._side("secrets"), update)
        return done[0]

    async def secret_delete(self, purpose: str, name: str) -> bool:
        """Remove one secret."""
        done: list[bool] = []

        def update(doc: _Doc) -> None:
            done.append(_section(doc, purpose, create=True).pop(name, None) is not None)

        await asyncio.to_thread(self._update, self._side("secrets"), update)
        return done[0]

    async def secret_scan(
        self, purpose: str, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """Secrets in name order after ``cursor``."""
        doc = await asyncio.to_thread(self._read, self._side("secrets"))
        section = _section(doc, purpose)
        names = sorted(n for n in section if cursor is None or n > cursor)[:limit]
        items = [(n, base64.b64decode(str(section[n]))) for n in names]
        return items, (names[-1] if len(names) == limit else None)

    def _side(self, kind: str) -> Path:
        return self._path.with_name(f"{self._path.name}.{kind}")

    def _prepare(self) -> None:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _update(self, path: Path, change: Callable[[_Doc], None]) -> None:
        with locked(self._path):
            doc = self._read(path) or {}
            change(doc)
            self._write(path, doc)

    def _read(self, path: Path) -> _Doc | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise KeyringError(f"kms: cannot read {path}: {e.strerror}") from e
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise KeyringError(f"kms: {path} is corrupt (not JSON)") from e
        if not isinstance(doc, dict):
            raise KeyringError(f"kms: {path} is corrupt")
        return doc

    def _write(self, path: Path, doc: _Doc) -> None:
        try:
            write_atomic(path, json.dumps(doc, sort_keys=True).encode("utf-8"))
        except OSError as e:
            raise KeyringError(f"kms: cannot write {path}: {e.strerror}") from e


def _section(doc: _Doc | None, purpose: str, *, create: bool = False) -> dict[str, object]:
    if doc is None:
        return {}
    section = doc.get(purpose)
    if not isinstance(section, dict):
        if not create:
            return {}
        section = {}
        doc[purpose] = section
    return section


def _as_int(raw: object) -> int:
    if not isinstance(raw, int):
        raise KeyringError("kms: usage file is corrupt")
    return raw
