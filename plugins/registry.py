"""The field-action registry: built-ins listed here, third-party ones from entry points.

The policy loader asks :func:`action_names` at start-up and
:func:`create_action` once per rule. Rules (see :mod:`plugins.entrypoints`):
built-ins are the explicit :data:`BUILTIN_ACTIONS` tuple; third-party
actions come from the ``tokengate.plugins`` entry-point group, each loading a
FieldAction class whose ``name`` equals the entry point's; a name defined
twice stops start-up with an error naming both sources. The table is built
once per process. Custom authorizers have their own group
(:mod:`plugins.authorizers`) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import cast

from plugins.authorizers import authorizer_names, create_authorizer
from plugins.base import FieldAction
from plugins.detokenize import Detokenize
from plugins.entrypoints import Loaded, build_table, group_entry_points
from plugins.hash import Hash
from plugins.mask import Mask
from plugins.redact import Redact
from plugins.tee import Tee
from plugins.tokenize import Tokenize

__all__ = [
    "BUILTIN_ACTIONS",
    "GROUP",
    "action_names",
    "action_table",
    "authorizer_names",
    "create_action",
    "create_authorizer",
]

GROUP = "tokengate.plugins"
BUILTIN_ACTIONS: tuple[type[FieldAction], ...] = (Tokenize, Detokenize, Redact, Mask, Hash, Tee)


@cache
def action_table() -> Mapping[str, Loaded]:
    """Name -> action class, loaded once; raises PluginLoadError on a conflict."""
    return build_table(
        "action",
        BUILTIN_ACTIONS,
        group_entry_points(GROUP),
        methods=("configure",),
        async_methods=("apply",),
    )


def action_names() -> frozenset[str]:
    """Every action name a rule may use."""
    return frozenset(action_table())


def create_action(name: str, options: Mapping[str, object]) -> FieldAction:
    """A NEW configured action for one rule; ``ValueError`` for an unknown name or bad options."""
    loaded = action_table().get(name)
    if loaded is None:
        raise ValueError(f"unknown action '{name}' (known: {', '.join(sorted(action_table()))})")
    action = cast("FieldAction", loaded.cls())
    action.configure(options)
    return action
