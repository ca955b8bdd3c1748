"""A worker's job bundle: measured once, then loaded from exactly the bytes measured.

Rules (docs/tee-protocol.md, "Measurement (sim)"):

- A bundle is one Python file or a package directory that defines
  ``JOBS: dict[str, Callable[[list[str]], list[str]]]``.
- Its files are every regular file under the root except ``__pycache__``
  directories and ``*.pyc`` files; symbolic links are refused (what is
  measured must be what is there).
- measurement = SHA-384 over, for each file in the order of its relative path
  (POSIX spelling, UTF-8 bytes, sorted bytewise):
  ``u64be(len(path)) || path || u64be(len(data)) || data``. A single-file
  bundle's one path is its file name.
- The code that runs is the code measured: the files are read into memory once,
  hashed, and imported from those bytes (never re-read from disk), under a
  private module name. Modules inside a package bundle import each other
  relatively (``from . import cards``).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import itertools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from tee.errors import BundleError

Job = Callable[[list[str]], list[str]]
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Bundle:
    """A loaded bundle: where it came from, what it measures, the jobs it offers."""

    root: Path
    measurement: bytes  # SHA-384 (48 B)
    jobs: Mapping[str, Job]


def read_files(path: Path) -> dict[str, bytes]:
    """The bundle's files, relative POSIX path -> bytes (single file: its name)."""
    if path.is_symlink():
        raise BundleError(f"bundle: {path.name} is a symbolic link")
    if path.is_file():
        return {path.name: path.read_bytes()}
    if not path.is_dir():
        raise BundleError(f"bundle: {path} is neither a file nor a directory")
    files: dict[str, bytes] = {}
    total = 0
    for entry in sorted(path.rglob("*")):
        rel = entry.relative_to(path)
        if "__pycache__" in rel.parts or entry.suffix == ".pyc":
            continue
        if entry.is_symlink():
            raise BundleError(f"bundle: {rel.as_posix()} is a symbolic link")
        if entry.is_dir():
            continue
        if not entry.is_file():
            raise BundleError(f"bundle: {rel.as_posix()} is not a regular file")
        data = entry.read_bytes()
        total += len(data)
        if total > MAX_BUNDLE_BYTES:
            raise BundleError("bundle: larger than 64 MiB")
        files[rel.as_posix()] = data
    return files


def measure_files(files: Mapping[str, bytes]) -> bytes:
    """SHA-384 over the length-framed (path, bytes) pairs in bytewise path order."""
    digest = hashlib.sha384()
    for name in sorted(files, key=lambda n: n.encode("utf-8")):
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(files[name]).to_bytes(8, "big") + files[name])
    return digest.digest()


def measure(path: Path) -> bytes:
    """The measurement of the bundle at ``path`` (what the registry lists)."""
    return measure_files(read_files(path))


def load_bundle(path: Path) -> Bundle:
    """Read, measure and import the bundle at ``path``; BundleError if it has no valid JOBS."""
    files = read_files(path)
    measurement = measure_files(files)
    name = f"_tokengate_bundle_{measurement.hex()[:16]}_{next(_counter)}"
    if path.is_dir():
        if "__init__.py" not in files:
            raise BundleError("bundle: a package bundle needs an __init__.py")
        module = _import_package(name, path, files)
    else:
        module = _import_file(name, path, files[path.name])
    return Bundle(root=path, measurement=measurement, jobs=_jobs(module))


def _jobs(module: ModuleType) -> dict[str, Job]:
    jobs = getattr(module, "JOBS", None)
    if not isinstance(jobs, dict) or not jobs:
        raise BundleError("bundle: JOBS must be a non-empty dict of job name -> function")
    for job_name, fn in jobs.items():
        if not isinstance(job_name, str) or not JOB_NAME.fullmatch(job_name):
            raise BundleError("bundle: job names are 1-64 of A-Z a-z 0-9 _ . -")
        if not callable(fn):
            raise BundleError(f"bundle: job {job_name} is not callable")
    return dict(jobs)


def _run(module: ModuleType, source: bytes, filename: str) -> None:
    """Execute measured source as ``module`` (any error in it: BundleError)."""
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
        # Executing the bundle is the worker's purpose; these are the measured bytes.
        exec(code, module.__dict__)  # noqa: S102
    except BundleError:
        raise
    except Exception as e:  # the bundle's own code failed at import: do not start
        raise BundleError(f"bundle: importing {filename} failed ({type(e).__name__})") from e


def _import_file(name: str, path: Path, source: bytes) -> ModuleType:
    module = ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        _run(module, source, str(path))
    except BundleError:
        del sys.modules[name]
        raise
    return module


class _MemoryImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one package bundle's modules from the bytes that were measured."""

    def __init__(self, package: str, root: Path, files: Mapping[str, bytes]) -> None:
        self._package = package
        self._root = root
        self._files = files

    def _source_path(self, fullname: str) -> tuple[str, bool] | None:
        if fullname == self._package:
            return "__init__.py", True
        if not fullname.startswith(self._package + "."):
            return None
        rel = fullname[len(self._package) + 1 :].replace(".", "/")
        if f"{rel}/__init__.py" in self._files:
            return f"{rel}/__init__.py", True
        if f"{rel}.py" in self._files:
            return f"{rel}.py", False
        return None

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        found = self._source_path(fullname)
        if found is None:
            return None
        rel, is_package = found
        spec = importlib.util.spec_from_loader(
            fullname, self, origin=str(self._root / rel), is_package=is_package
        )
        if spec is not None and is_package:
            spec.submodule_search_locations = []
        return spec

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        found = self._source_path(module.__name__)
        if found is None:  # pragma: no cover - find_spec answered for this name
            raise BundleError("bundle: module vanished")
        rel, _ = found
        module.__file__ = str(self._root / rel)
        _run(module, self._files[rel], module.__file__)


def _import_package(name: str, root: Path, files: Mapping[str, bytes]) -> ModuleType:
    importer = _MemoryImporter(name, root, files)
    sys.meta_path.insert(0, importer)
    try:
        return importlib.import_module(name)
    except BundleError:
        sys.meta_path.remove(importer)
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        raise
