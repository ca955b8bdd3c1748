"""Name tables from built-ins and entry points: every conflict stops loading, naming both sides.

Entry points here are real ``importlib.metadata.EntryPoint`` objects that load
classes of this module (the installed-package path is test_third_party.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest

from plugins.base import ActionContext, FieldResult, FieldValue
from plugins.entrypoints import build_table
from plugins.errors import PluginLoadError
from plugins.mask import Mask
from plugins.redact import Redact

GROUP = "tokengate.plugins"
HERE = __name__


class Shout:
    name: ClassVar[str] = "shout"

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        return [FieldResult.replace("!") for _ in batch]


class NamedMask(Shout):
    name: ClassVar[str] = "mask"


class SyncApply:
    name: ClassVar[str] = "sync"

    def configure(self, options: Mapping[str, object]) -> None:
        pass

    def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        return []


class NoConfigure:
    name: ClassVar[str] = "noconf"

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        return []


class Nameless:
    def configure(self, options: Mapping[str, object]) -> None:
        pass

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        return []


def not_a_class() -> None:
    """An entry point must load a class."""


def ep(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{HERE}:{target}", group=GROUP)


def table(builtins: tuple[type, ...], *eps: EntryPoint) -> Mapping[str, object]:
    loaded = build_table("action", builtins, eps, methods=("configure",), async_methods=("apply",))
    return {name: entry.cls for name, entry in loaded.items()}


def test_built_ins_and_entry_points_share_one_table() -> None:
    assert table((Mask, Redact), ep("shout", "Shout")) == {
        "mask": Mask,
        "redact": Redact,
        "shout": Shout,
    }


@pytest.mark.parametrize(
    ("builtins", "eps", "message"),
    [
        (
            (Mask,),
            [ep("mask", "NamedMask")],
            "plugins: action 'mask' is defined twice: built-in plugins.mask:Mask and "
            f"entry point 'mask = {HERE}:NamedMask'",
        ),
        (
            (),
            [ep("shout", "Shout"), ep("shout", "Shout")],
            f"plugins: action 'shout' is defined twice: entry point 'shout = {HERE}:Shout' and "
            f"entry point 'shout = {HERE}:Shout'",
        ),
        ((Mask, Mask), [], "plugins: action 'mask' is defined twice: built-in plugins.mask:Mask"),
        (
            (),
            [ep("yell", "Shout")],
            f"plugins: entry point 'yell = {HERE}:Shout' loads action 'shout', not 'yell'",
        ),
        (
            (),
            [EntryPoint("gone", "no_such_module_here:Thing", GROUP)],
            "plugins: entry point 'gone = no_such_module_here:Thing' cannot be loaded: "
            "ModuleNotFoundError",
        ),
        (
            (),
            [ep("f", "not_a_class")],
            f"plugins: entry point 'f = {HERE}:not_a_class' does not load a class",
        ),
        ((), [ep("sync", "SyncApply")], "plugins: action 'sync' method 'apply' is not async"),
        ((), [ep("noconf", "NoConfigure")], "plugins: action 'noconf' has no 'configure' method"),
        (
            (),
            [ep("x", "Nameless")],
            f"plugins: {HERE}:Nameless is not a valid action class (no 'name')",
        ),
    ],
)
def test_conflicts_and_broken_plugins_stop_loading(
    builtins: tuple[type, ...], eps: list[EntryPoint], message: str
) -> None:
    with pytest.raises(PluginLoadError) as caught:
        table(builtins, *eps)
    assert str(caught.value).startswith(message)
    assert caught.value.status == 500


def test_authorizer_tables_check_their_own_methods() -> None:
    with pytest.raises(PluginLoadError, match="authorizer 'shout' has no 'decide' method"):
        build_table("authorizer", (), [ep("shout", "Shout")], methods=("configure", "decide"))
