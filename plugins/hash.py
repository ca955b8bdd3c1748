"""The ``hash`` action: a keyed HMAC-SHA256 of each value (keyring purpose ``hash``).

Output: ``h1_<version>_<digest>`` where ``h1`` names this format, ``version``
is the decimal key version of purpose ``hash`` that made it, and ``digest``
is the 32-byte HMAC in lowercase base32 without padding (52 characters).
The key version is explicit so that a new version never silently compares
unequal with an old hash: callers see which version each hash belongs to.

The HMAC input is length-framed and domain-separated::

    "tokengate/hash/v1" | len(class) | class | len(tenant) | tenant | value

What it leaks (documented on purpose): equal values of one class and tenant
hash equal under one key version, so the backend can join and count
duplicates; nothing else. Without the key, guessing is impossible even for
low-entropy values (SSNs); with the key, such values can be enumerated.
Rotating purpose ``hash`` breaks equality between old and new hashes.

Options (YAML)::

    - action: hash
      class: email        # optional; part of the domain separation (default "")
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import ClassVar

from pydantic import Field

from plugins.base import ActionContext, FieldResult, FieldValue
from plugins.options import NOT_TEXT, ClassOption, StrictOptions, as_text, parse_options

PURPOSE = "hash"
FORMAT = "h1"
_DOMAIN = b"tokengate/hash/v1"


class HashOptions(StrictOptions):
    """Options of ``hash``."""

    field_class: ClassOption | None = Field(default=None, alias="class")


def _framed(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def hash_input(class_name: str, tenant: str, text: str) -> bytes:
    """The exact bytes that are HMACed (public so tests can check known answers)."""
    return _framed(_DOMAIN, class_name.encode(), tenant.encode(), text.encode())


def render(version: int, digest: bytes) -> str:
    """``h1_<version>_<base32 digest>``."""
    body = base64.b32encode(digest).decode("ascii").rstrip("=").lower()
    return f"{FORMAT}_{version}_{body}"


class Hash:
    """Replace each value by its keyed hash."""

    name: ClassVar[str] = "hash"

    def __init__(self) -> None:
        self._class = ""

    def configure(self, options: Mapping[str, object]) -> None:
        """Keep the class name used for domain separation."""
        parsed = parse_options(HashOptions, options, "hash")
        self._class = parsed.field_class.name if parsed.field_class is not None else ""

    async def apply(self, batch: Sequence[FieldValue], ctx: ActionContext) -> list[FieldResult]:
        """One hash per value; null and "" stay, floats and booleans are invalid."""
        out: list[FieldResult] = []
        for item in batch:
            if item.value is None or item.value == "":
                out.append(FieldResult.replace(item.value))
                continue
            text = as_text(item.value)
            if text is None:
                out.append(FieldResult.invalid(NOT_TEXT))
                continue
            mac = ctx.keys.hmac(PURPOSE, hash_input(self._class, ctx.tenant, text))
            out.append(FieldResult.replace(render(mac.version, mac.digest)))
        return out
