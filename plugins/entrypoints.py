"""Name tables of plugins: built-ins listed explicitly, third-party ones from entry points.

Rules (mitmproxy's add-on manager, minus its carry-on-after-errors habit):
- built-ins come from an explicit tuple in the caller, never from scanning;
- third-party classes come from one ``importlib.metadata`` entry-point group;
- the entry point's name must equal the loaded class's ``name`` ClassVar;
- a name defined twice (built-in and third-party, or two third-party
  packages) raises :class:`PluginLoadError` naming both sources: start-up
  stops instead of one silently shadowing the other;
- a class that fails to import or lacks the interface stops start-up too.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

from plugins.errors import PluginLoadError


@dataclass(frozen=True, slots=True)
class Loaded:
    """One named class and where it came from (for duplicate errors)."""

    cls: type
    source: str  # "built-in plugins.mask:Mask" or "entry point 'x = m:C' (dist 1.0)"


def build_table(
    kind: str,
    builtins: Iterable[type],
    discovered: Iterable[EntryPoint],
    *,
    methods: tuple[str, ...],
    async_methods: tuple[str, ...] = (),
) -> Mapping[str, Loaded]:
    """Name -> class for ``kind`` ("action", "authorizer"); raises on any conflict."""
    table: dict[str, Loaded] = {}
    for cls in builtins:
        name = _checked(kind, cls, methods, async_methods)
        _add(table, kind, name, Loaded(cls, f"built-in {_qual(cls)}"))
    for ep in discovered:
        cls = _load(kind, ep)
        loaded_name = _checked(kind, cls, methods, async_methods)
        if loaded_name != ep.name:
            raise PluginLoadError(
                f"plugins: {_source(ep)} loads {kind} '{loaded_name}', not '{ep.name}'"
            )
        _add(table, kind, ep.name, Loaded(cls, _source(ep)))
    return MappingProxyType(table)


def group_entry_points(group: str) -> list[EntryPoint]:
    """Every installed entry point of ``group`` (distributions found on ``sys.path``)."""
    return list(entry_points(group=group))


def _add(table: dict[str, Loaded], kind: str, name: str, entry: Loaded) -> None:
    if name in table:
        raise PluginLoadError(
            f"plugins: {kind} '{name}' is defined twice: {table[name].source} and {entry.source}"
        )
    table[name] = entry


def _checked(kind: str, cls: type, methods: tuple[str, ...], async_methods: tuple[str, ...]) -> str:
    """The class's ``name``; raises when the class does not have the interface."""
    name = getattr(cls, "name", None)
    if not inspect.isclass(cls) or not isinstance(name, str) or not name:
        raise PluginLoadError(f"plugins: {_qual(cls)} is not a valid {kind} class (no 'name')")
    for method in (*methods, *async_methods):
        if not callable(getattr(cls, method, None)):
            raise PluginLoadError(f"plugins: {kind} '{name}' has no '{method}' method")
    for method in async_methods:
        if not inspect.iscoroutinefunction(getattr(cls, method)):
            raise PluginLoadError(f"plugins: {kind} '{name}' method '{method}' is not async")
    return name


def _load(kind: str, ep: EntryPoint) -> type:
    try:
        loaded: object = ep.load()
    except Exception as e:
        raise PluginLoadError(f"plugins: {_source(ep)} cannot be loaded: {type(e).__name__}") from e
    if not inspect.isclass(loaded):
        raise PluginLoadError(f"plugins: {_source(ep)} does not load a class")
    return loaded


def _source(ep: EntryPoint) -> str:
    dist = f" from {ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
    return f"entry point '{ep.name} = {ep.value}'{dist}"


def _qual(cls: object) -> str:
    return f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', '?')}"
