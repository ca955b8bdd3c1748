"""``upper``: upper-case text values (a field action from the ``tokengate.plugins`` group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from plugins.base import ActionContext, FieldResult, FieldValue


class Upper:
    """Upper-case every string; other values stay as they are."""

    name: ClassVar[str] = "upper"

    def configure(self, options: Mapping[str, object]) -> None:
        """No options: anything given is a load error."""
        if options:
            raise ValueError(f"upper: takes no options (got {', '.join(sorted(options))})")

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """One result per value, in order."""
        return [
            FieldResult.replace(v.value.upper() if isinstance(v.value, str) else v.value)
            for v in batch
        ]
