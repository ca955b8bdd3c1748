"""A third-party plugin package, installed for real with pip, loads from its entry points.

The example package (examples/tokengate_plugin_example) is built by pip
through its PEP 517 backend and installed into a temporary directory; a
fresh interpreter with that directory on PYTHONPATH finds its dist-info, so
``importlib.metadata`` sees the entry points exactly as after a normal
install. Duplicate names (a second package, or a built-in's name) must stop
loading with an error naming both sources.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plugins.authorizers import authorizer_names
from plugins.registry import action_names

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tokengate_plugin_example"

LOADS = textwrap.dedent(
    """
    import asyncio, json
    from plugins.authorizers import authorizer_names
    from plugins.base import FieldValue, Subject
    from plugins.registry import action_names, create_action
    from vault.api import ClassSpec, RecordInfo
    from plugins.base import FieldClass

    upper = create_action("upper", {})
    batch = [FieldValue("abc", "$.a"), FieldValue(3, "$.b"), FieldValue(None, "$.c")]
    results = asyncio.run(upper.apply(batch, None))
    try:
        create_action("upper", {"shout": True})
        bad = None
    except ValueError as e:
        bad = str(e)
    rule = create_action("detokenize", {
        "class": FieldClass(ClassSpec("ssn")),
        "allow": {"authorizer": "business_hours", "options": {"start": 9, "end": 17},
                  "roles": ["support"]},
    })
    record = RecordInfo("ssn", "opaque", "alice", "", 0, None, 1)
    support = Subject(sub="sam", roles=frozenset({"support"}))
    decide = rule._allow.decide
    print(json.dumps({
        "actions": sorted(action_names()),
        "authorizers": sorted(authorizer_names()),
        "upper": [r.value for r in results],
        "bad": bad,
        "at_10": [decide(support, record, 10 * 3600).allow, decide(support, record, 10 * 3600).reason],
        "at_20": [decide(support, record, 20 * 3600).allow, decide(support, record, 20 * 3600).reason],
        "no_role": decide(Subject(sub="x"), record, 10 * 3600).reason,
    }))
    """
)


def pip_install(source: Path, target: Path) -> None:
    """Build and install ``source`` into ``target`` with pip, offline, without isolation."""
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
            "--no-build-isolation", "--disable-pip-version-check", "--target", str(target),
            str(source),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )  # fmt: skip


def python(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``paths`` (and the repo) on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clash_package(root: Path, name: str, entries: dict[str, dict[str, str]], module: str) -> Path:
    """A second plugin package (own pyproject, same tiny backend) defining ``entries``."""
    src = root / name
    shutil.copytree(EXAMPLE / "build_backend", src / "build_backend")
    package = name.replace("-", "_")
    (src / package).mkdir()
    (src / package / "__init__.py").write_text(module)
    tables = "\n".join(
        f'[project.entry-points."{group}"]\n'
        + "\n".join(f'{n} = "{package}:{target}"' for n, target in items.items())
        for group, items in entries.items()
    )
    (src / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [project]
            name = "{name}"
            version = "2.0.0"
            requires-python = ">=3.12"
            dependencies = []

            [build-system]
            requires = []
            build-backend = "tg_example_build"
            backend-path = ["build_backend"]
            """
        )
        + tables
        + "\n"
    )
    return src


CLASH_MODULE = textwrap.dedent(
    """
    from plugins.redact import Redact
    from tokengate_plugin_example.authorizers import BusinessHours as _Hours

    class Upper(Redact):
        name = "upper"

    class Mask(Redact):
        name = "mask"

    class Hours(_Hours):
        name = "business_hours"
    """
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package, installed by pip into its own directory."""
    target = tmp_path_factory.mktemp("site-example")
    pip_install(EXAMPLE, target)
    return target


def test_pip_installed_the_dist_info_with_the_entry_points(installed: Path) -> None:
    [info] = installed.glob("tokengate_plugin_example-0.1.0.dist-info")
    text = (info / "entry_points.txt").read_text()
    assert "[tokengate.plugins]\nupper = tokengate_plugin_example.actions:Upper" in text
    assert "business_hours = tokengate_plugin_example.authorizers:BusinessHours" in text


def test_the_installed_plugin_and_authorizer_load_from_their_entry_points(
    installed: Path,
) -> None:
    done = python(LOADS, installed)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["actions"] == ["detokenize", "hash", "mask", "redact", "tee", "tokenize", "upper"]
    assert seen["authorizers"] == ["business_hours"]
    assert seen["upper"] == ["ABC", 3, None]
    assert seen["bad"] == "upper: takes no options (got shout)"
    assert seen["at_10"] == [True, "roles+authorizer"]
    assert seen["at_20"] == [False, "business_hours:outside_hours"]
    assert seen["no_role"] == "missing_role"


def test_without_the_package_nothing_third_party_is_there() -> None:
    # the deny twin: this process has no plugin installed
    assert "upper" not in action_names()
    assert "business_hours" not in authorizer_names()
    done = python(LOADS)
    assert done.returncode != 0
    assert "unknown action 'upper'" in done.stderr


def test_a_second_package_with_the_same_names_stops_loading(
    installed: Path, tmp_path: Path
) -> None:
    clash = clash_package(
        tmp_path,
        "tokengate-plugin-clash",
        {
            "tokengate.plugins": {"upper": "Upper"},
            "tokengate.authorizers": {"business_hours": "Hours"},
        },
        CLASH_MODULE,
    )
    target = tmp_path / "site-clash"
    pip_install(clash, target)
    for code, kind, name, ours, theirs in [
        (
            "from plugins.registry import action_names; action_names()",
            "action",
            "upper",
            "entry point 'upper = tokengate_plugin_example.actions:Upper' from tokengate-plugin-example 0.1.0",
            "entry point 'upper = tokengate_plugin_clash:Upper' from tokengate-plugin-clash 2.0.0",
        ),
        (
            "from plugins.authorizers import authorizer_names; authorizer_names()",
            "authorizer",
            "business_hours",
            "entry point 'business_hours = tokengate_plugin_example.authorizers:BusinessHours'",
            "entry point 'business_hours = tokengate_plugin_clash:Hours' from tokengate-plugin-clash",
        ),
    ]:
        done = python(code, installed, target)
        assert done.returncode != 0
        assert "PluginLoadError" in done.stderr
        assert f"plugins: {kind} '{name}' is defined twice: " in done.stderr
        assert ours in done.stderr
        assert theirs in done.stderr


def test_a_package_reusing_a_built_in_name_stops_loading(installed: Path, tmp_path: Path) -> None:
    clash = clash_package(
        tmp_path, "tokengate-plugin-mask", {"tokengate.plugins": {"mask": "Mask"}}, CLASH_MODULE
    )
    target = tmp_path / "site-mask"
    pip_install(clash, target)
    done = python("from plugins.registry import action_names; action_names()", installed, target)
    assert done.returncode != 0
    assert (
        "plugins: action 'mask' is defined twice: built-in plugins.mask:Mask and "
        "entry point 'mask = tokengate_plugin_mask:Mask' from tokengate-plugin-mask 2.0.0"
    ) in done.stderr
