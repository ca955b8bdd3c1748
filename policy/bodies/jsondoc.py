"""JSON bodies: strict parsing and an encoder that keeps every number as it came.

Rules:
- UTF-8 only, no byte-order mark; NaN and Infinity are refused (not JSON).
- An object that repeats a member name is refused: a backend may read the
  other copy than the one a rule transformed, so a duplicate is a bypass.
- Integers stay Python ints of any size (up to Python's 4300-digit limit);
  a number with a fraction or exponent is a float that remembers its text,
  so re-encoding never turns ``1e400`` into ``Infinity`` or ``0.10`` into ``0.1``.
- Output is compact; the untouched body is returned as received, so its
  bytes only change when a rule changed a value.
- Encoding is iterative: nesting depth cannot exhaust the Python stack.
- A document that never held a :class:`JsonFloat` (tracked from parsing on)
  is encoded by ``json.dumps`` with the same output contract: compact, member
  order kept, non-ASCII as UTF-8; a lone surrogate or a nesting too deep for
  the C encoder falls back to the iterative encoder, which keeps them exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from policy.bodies.errors import Malformed
from policy.selectors import (
    JsonPath,
    Slot,
    Step,
    json_remove,
    json_replace,
    locate_json,
    select_json,
)


class JsonFloat(float):
    """A JSON number with a fraction or exponent; ``text`` is its exact source text."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonFloat:
        """Keep ``text`` next to the float value."""
        obj = super().__new__(cls, text)
        obj.text = text
        return obj


class _Duplicate(Exception):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate
    return out


def _constant(_: str) -> object:
    raise ValueError("not json")


def parse_json(body: bytes) -> object:
    """The JSON value of ``body``; raise Malformed when it is not strict UTF-8 JSON."""
    return _parse(body, JsonFloat)


def _parse(body: bytes, make_float: Callable[[str], JsonFloat]) -> object:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Malformed("json body is not utf-8") from e
    if text.startswith("\ufeff"):
        raise Malformed("json body starts with a byte-order mark")
    try:
        return json.loads(
            text, object_pairs_hook=_pairs, parse_float=make_float, parse_constant=_constant
        )
    except _Duplicate as e:
        raise Malformed("json object repeats a member name") from e
    except RecursionError as e:
        raise Malformed("json body is nested too deeply") from e
    except ValueError as e:  # JSONDecodeError and the int digit limit
        raise Malformed("body is not valid json") from e


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: keep it escaped
            out = json.dumps(s)
    return out


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, JsonFloat):
        return value.text
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("json cannot hold a non-finite number")
        return repr(float(value))
    if isinstance(value, str):
        return _string(value)
    raise TypeError("not a json value")


def _check(value: object) -> None:
    """Raise as :func:`_scalar` would for a value JSON cannot hold, without encoding it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("json cannot hold a non-finite number")
    if value is not None and not isinstance(value, str | int | float):
        raise TypeError("not a json value")


def _dumps(root: object) -> bytes | None:
    """``json.dumps`` of a float-free document; None where only the walker below can do it
    (a lone surrogate stays escaped, deep nesting is walked iteratively)."""
    try:
        text = json.dumps(root, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (UnicodeEncodeError, RecursionError):
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def encode_json(root: object, *, plain: bool = False) -> bytes:
    """Compact UTF-8 JSON text of ``root`` (dict, list and scalar values).

    ``plain``: the caller knows ``root`` holds no :class:`JsonFloat` and only
    string member names (a parsed document that tracked it), so ``json.dumps``
    may do the work; its output is then the same as the iterative encoder's.
    """
    if plain and (fast := _dumps(root)) is not None:
        return fast
    parts: list[str] = []
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            parts.append(item.text)
        elif isinstance(item, dict):
            parts.append("{")
            stack.append(_Raw("}"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                key, value = entries[i]
                stack.append(value)
                stack.append(_Raw(("," if i else "") + _string(str(key)) + ":"))
        elif isinstance(item, list):
            parts.append("[")
            stack.append(_Raw("]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append(_Raw(","))
        else:
            parts.append(_scalar(item))
    return "".join(parts).encode("utf-8")


class JsonDocument:
    """A parsed JSON body that rules select from and write back into."""

    def __init__(self, body: bytes) -> None:
        self._floats = False  # whether a JsonFloat is (or was) in the tree
        self.root = _parse(body, self._float)
        self.changed = False

    def _float(self, text: str) -> JsonFloat:
        self._floats = True
        return JsonFloat(text)

    def select(self, steps: tuple[Step, ...]) -> list[tuple[JsonPath, object]]:
        """Every (location, value) the steps reach."""
        return select_json(self.root, steps)

    def locate(self, steps: tuple[Step, ...]) -> list[Slot]:
        """Every slot the steps reach (location, its text, and where to write it)."""
        return locate_json(self.root, steps)

    def replace(self, path: JsonPath, value: object) -> None:
        """Write a scalar at ``path``."""
        _check(value)  # refuse what JSON cannot hold before touching the tree
        json_replace(self.root, path, value)
        self._wrote(value)

    def replace_slot(self, slot: Slot, value: object) -> None:
        """Write a scalar at ``slot`` (which :meth:`locate` returned; leaves only)."""
        _check(value)
        _, _, parent, key, _ = slot
        in_object = isinstance(parent, dict) and isinstance(key, str) and key in parent
        in_array = isinstance(parent, list) and isinstance(key, int) and key < len(parent)
        if not (in_object or in_array):
            raise ValueError("location does not exist")
        parent[key] = value  # type: ignore[index]  # a dict or a list, checked above
        self._wrote(value)

    def remove_slot(self, slot: Slot) -> None:
        """Drop the member at ``slot`` (array elements become null)."""
        self.remove(slot[0])

    def _wrote(self, value: object) -> None:
        self._floats = self._floats or isinstance(value, JsonFloat)
        self.changed = True

    def remove(self, path: JsonPath) -> None:
        """Drop the member at ``path`` (array elements become null)."""
        json_remove(self.root, path)
        self.changed = True

    def encode(self) -> bytes:
        """The body as it now is."""
        return encode_json(self.root, plain=not self._floats)
