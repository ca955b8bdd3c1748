"""Custom authorizers: the ``tokengate.authorizers`` entry-point group.

An allow condition names one as ``{authorizer: NAME, options: {...}}``; each
rule gets a NEW configured instance. There are no built-in authorizers: the
allow conditions of :mod:`plugins.authorize` cover roles, claims, owner,
tenants, MFA and authentication age. A name defined twice stops start-up
(:mod:`plugins.entrypoints`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import cast

from plugins.base import Authorizer
from plugins.entrypoints import Loaded, build_table, group_entry_points

GROUP = "tokengate.authorizers"
BUILTIN_AUTHORIZERS: tuple[type[Authorizer], ...] = ()


@cache
def authorizer_table() -> Mapping[str, Loaded]:
    """Name -> authorizer class, loaded once; raises PluginLoadError on a conflict."""
    return build_table(
        "authorizer",
        BUILTIN_AUTHORIZERS,
        group_entry_points(GROUP),
        methods=("configure", "decide"),
    )


def authorizer_names() -> frozenset[str]:
    """Every authorizer name a rule may use."""
    return frozenset(authorizer_table())


def create_authorizer(name: str, options: Mapping[str, object]) -> Authorizer:
    """A new configured authorizer; ``ValueError`` for an unknown name or bad options."""
    loaded = authorizer_table().get(name)
    if loaded is None:
        known = ", ".join(sorted(authorizer_table())) or "none installed"
        raise ValueError(f"unknown authorizer '{name}' (known: {known})")
    authorizer = cast("Authorizer", loaded.cls())
    authorizer.configure(options)
    return authorizer
