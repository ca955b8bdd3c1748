"""``application/x-www-form-urlencoded`` bodies and query strings.

Rules:
- Pairs keep their order; a repeated name is several pairs, and a rule sees
  every one of them (a backend that reads the first or the last copy gets a
  transformed value either way).
- ``+`` is a space and ``%XX`` a byte; a ``%`` not followed by two hex digits
  or bytes that are not UTF-8 make the text Malformed, because a backend may
  decode them differently from us.
- Only pairs a rule changed are re-encoded (their name keeps its original
  spelling); everything else keeps its exact text, and the text is returned
  unchanged when no pair changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_to_bytes

from policy.bodies.errors import Malformed

_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(slots=True)
class _Pair:
    raw: str
    name: str
    value: str
    removed: bool = False


def _decode(text: str) -> str:
    if _BAD_PERCENT.search(text):
        raise Malformed("form text has a bad percent escape")
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError as e:
        raise Malformed("form text is not utf-8") from e


class FormPairs:
    """Name/value pairs of a query string or urlencoded body."""

    def __init__(self, text: str) -> None:
        self._pairs: list[_Pair] = []
        self.changed = False
        for raw in text.split("&") if text else ():
            name, _, value = raw.partition("=")
            self._pairs.append(_Pair(raw, _decode(name), _decode(value)))

    def select(self, name: str) -> list[tuple[int, object]]:
        """(index, value) of every pair called ``name``, in order."""
        return [(i, p.value) for i, p in enumerate(self._pairs) if p.name == name and not p.removed]

    def replace(self, index: int, value: str) -> None:
        """Give pair ``index`` a new value."""
        pair = self._pairs[index]
        raw_name = pair.raw.partition("=")[0]
        pair.raw = f"{raw_name}={quote_plus(value, safe='')}"
        pair.value = value
        self.changed = True

    def remove(self, index: int) -> None:
        """Drop pair ``index``."""
        self._pairs[index].removed = True
        self.changed = True

    def encode(self) -> str:
        """The text as it now is."""
        return "&".join(p.raw for p in self._pairs if not p.removed)


class UrlencodedDocument(FormPairs):
    """An urlencoded body: UTF-8 bytes around :class:`FormPairs`."""

    def __init__(self, body: bytes) -> None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Malformed("form body is not utf-8") from e
        super().__init__(text)

    def encode_body(self) -> bytes:
        """The body as it now is."""
        return self.encode().encode("utf-8")
