"""tee.bundle: the measurement's exact framing, and loading exactly the bytes measured."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tee.bundle import load_bundle, measure, measure_files, read_files
from tee.errors import BundleError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tee_jobs"


def framed(files: dict[str, bytes]) -> bytes:
    out = b""
    for name in sorted(files, key=str.encode):
        out += len(name.encode()).to_bytes(8, "big") + name.encode()
        out += len(files[name]).to_bytes(8, "big") + files[name]
    return hashlib.sha384(out).digest()


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


PKG = {
    "__init__.py": "from . import impl\nJOBS = {'upper': impl.upper}\n",
    "impl.py": "def upper(values):\n    return [v.upper() for v in values]\n",
}


def test_measurement_known_answer() -> None:
    files = {"b.py": b"2", "a/x.py": b"1", "a.py": b""}
    assert measure_files(files) == framed(files)
    expected = hashlib.sha384(
        b"\0\0\0\0\0\0\0\x04a.py" + b"\0" * 8
        + b"\0\0\0\0\0\0\0\x06a/x.py\0\0\0\0\0\0\0\x011"
        + b"\0\0\0\0\0\0\0\x04b.py\0\0\0\0\0\0\0\x012"
    ).digest()  # fmt: skip
    assert measure_files(files) == expected


def test_framing_separates_path_and_content() -> None:
    assert measure_files({"ab": b"c"}) != measure_files({"a": b"bc"})
    assert measure_files({"a": b"", "b": b""}) != measure_files({"a": b"", "bb": b""})


def test_package_bundle_loads_and_measures(tmp_path: Path) -> None:
    write(tmp_path, PKG)
    bundle = load_bundle(tmp_path)
    assert (
        bundle.measurement == measure(tmp_path) == framed({k: v.encode() for k, v in PKG.items()})
    )
    assert list(bundle.jobs) == ["upper"]
    assert bundle.jobs["upper"](["a", "b"]) == ["A", "B"]


def test_file_bundle_measures_its_name_and_bytes(tmp_path: Path) -> None:
    src = "JOBS = {'rev': lambda vs: [v[::-1] for v in vs]}\n"
    path = tmp_path / "jobs.py"
    path.write_text(src)
    bundle = load_bundle(path)
    assert bundle.measurement == framed({"jobs.py": src.encode()})
    assert bundle.jobs["rev"](["ab"]) == ["ba"]


def test_pycache_and_pyc_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, PKG)
    before = measure(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "impl.cpython-312.pyc").write_bytes(b"junk")
    (tmp_path / "stale.pyc").write_bytes(b"junk")
    assert measure(tmp_path) == before


@pytest.mark.parametrize(
    ("rel", "text"),
    [("impl.py", "def upper(values):\n    return values\n"), ("notes.txt", "x"), ("sub/a.py", "")],
    ids=["changed-file", "added-data-file", "added-subdir-file"],
)
def test_any_change_changes_the_measurement(tmp_path: Path, rel: str, text: str) -> None:
    write(tmp_path, PKG)
    before = measure(tmp_path)
    write(tmp_path, {rel: text})
    assert measure(tmp_path) != before


def test_renaming_a_file_changes_the_measurement(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "x"})
    before = measure(tmp_path)
    (tmp_path / "a.py").rename(tmp_path / "b.py")
    assert measure(tmp_path) != before


def test_the_code_that_runs_is_the_code_measured(tmp_path: Path) -> None:
    """A module imported lazily after load still comes from the measured bytes."""
    write(
        tmp_path,
        {
            "__init__.py": "def late(values):\n    from . import later\n    return later.f(values)\nJOBS = {'late': late}\n",
            "later.py": "def f(values):\n    return ['measured' for _ in values]\n",
        },
    )
    bundle = load_bundle(tmp_path)
    (tmp_path / "later.py").write_text("def f(values):\n    return ['swapped' for _ in values]\n")
    assert bundle.jobs["late"](["x"]) == ["measured"]


def test_two_loads_of_one_bundle_do_not_collide(tmp_path: Path) -> None:
    write(tmp_path, PKG)
    a, b = load_bundle(tmp_path), load_bundle(tmp_path)
    assert a.jobs["upper"] is not b.jobs["upper"]
    assert a.measurement == b.measurement


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"__init__.py": "X = 1\n"}, "JOBS"),
        ({"__init__.py": "JOBS = {}\n"}, "JOBS"),
        ({"__init__.py": "JOBS = [1]\n"}, "JOBS"),
        ({"__init__.py": "JOBS = {'a': 1}\n"}, "not callable"),
        ({"__init__.py": "JOBS = {'a b': print}\n"}, "job names"),
        ({"__init__.py": "JOBS = {'': print}\n"}, "job names"),
        ({"__init__.py": "raise RuntimeError('boom')\n"}, "importing"),
        ({"__init__.py": "def broken(:\n"}, "importing"),
        ({"__init__.py": "from . import missing\n"}, "importing"),
        ({"impl.py": "JOBS = {'a': print}\n"}, "__init__"),
    ],
    ids=[
        "no-jobs",
        "empty",
        "not-dict",
        "not-callable",
        "space-name",
        "empty-name",
        "raises",
        "syntax",
        "missing-sibling",
        "no-init",
    ],
)
def test_bad_bundles_are_refused(tmp_path: Path, files: dict[str, str], match: str) -> None:
    write(tmp_path, files)
    with pytest.raises(BundleError, match=match):
        load_bundle(tmp_path)


def test_symlinks_and_missing_paths_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "pkg", PKG)
    (tmp_path / "pkg" / "link.py").symlink_to(tmp_path / "pkg" / "impl.py")
    with pytest.raises(BundleError, match="symbolic link"):
        read_files(tmp_path / "pkg")
    (tmp_path / "top").symlink_to(tmp_path / "pkg" / "impl.py")
    with pytest.raises(BundleError, match="symbolic link"):
        read_files(tmp_path / "top")
    with pytest.raises(BundleError, match="neither"):
        read_files(tmp_path / "absent")


def test_the_example_bundle_imports_nothing_of_tokengate() -> None:
    for path in EXAMPLE.rglob("*.py"):
        text = path.read_text()
        for top in ("tokengate", "tee", "proxy", "kms", "vault", "policy", "plugins", "audit"):
            assert f"import {top}" not in text, path
            assert f"from {top}" not in text, path


def test_the_example_bundle_loads() -> None:
    bundle = load_bundle(EXAMPLE)
    assert set(bundle.jobs) == {"card_check", "ssn_check"}
    assert len(bundle.measurement) == 48
