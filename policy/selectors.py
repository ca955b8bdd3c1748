"""Field selectors: where in a message a field rule looks, parsed once at load.

Grammar (everything else is refused at load with a short reason):

- JSON bodies, a JSONPath subset: ``$`` followed by one or more steps
  ``.name``, ``['any name']`` (``\\'`` and ``\\\\`` escapes), ``[N]`` (N >= 0),
  ``[*]`` or ``.*`` (every member or element), ``..name`` / ``..['name']``
  (that member at any depth). ``$`` alone, filters, slices, negative indexes
  and ``..*`` are refused: a rule names fields, it never scans.
- ``form:NAME``: urlencoded and multipart form fields (every occurrence).
- ``query:NAME``: query parameters (every occurrence).
- ``header:NAME``: header lines (every occurrence; names are case-insensitive).
  Framing, hop-by-hop and signing headers are the gateway's and are refused.

Rules of evaluation:
- Selection is by path only, never by looking at values.
- The set of locations a selector yields does not depend on member order.
- A location is a tuple path (``("items", 3, "ssn")``); write-back either
  replaces the scalar there or removes it (object member dropped; array
  element set to null so that other indexes keep their meaning).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

type JsonPath = tuple[str | int, ...]
type SelectorKind = Literal["json", "form", "query", "header"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX = re.compile(r"\[(\d{1,9})\]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_KINDS: dict[str, SelectorKind] = {"form": "form", "query": "query", "header": "header"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GATEWAY_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "content-digest",
        "signature",
        "signature-input",
    }
)


@dataclass(frozen=True, slots=True)
class Member:
    """``.name`` / ``['name']``: one object member."""

    name: str


@dataclass(frozen=True, slots=True)
class Index:
    """``[N]``: one array element."""

    index: int


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``[*]`` / ``.*``: every member of an object or element of an array."""


@dataclass(frozen=True, slots=True)
class Descend:
    """``..name``: the member ``name`` of this node or of any node below it."""

    name: str


type Step = Member | Index | Wildcard | Descend


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector; ``str()`` gives its canonical text."""

    kind: SelectorKind
    name: str = ""  # form / query / header name (headers lowercased)
    steps: tuple[Step, ...] = ()  # json only

    @property
    def targets_body(self) -> bool:
        """Whether this selector reads the body (json or form)."""
        return self.kind in ("json", "form")

    def __str__(self) -> str:
        if self.kind != "json":
            return f"{self.kind}:{self.name}"
        return "$" + "".join(_step_text(s) for s in self.steps)


def _member_text(name: str) -> str:
    if _IDENT.fullmatch(name):
        return f".{name}"
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


@functools.lru_cache(maxsize=1024)  # steps come from config; selection reuses their text
def _step_text(step: Step) -> str:
    match step:
        case Member(name):
            return _member_text(name)
        case Index(index):
            return f"[{index}]"
        case Wildcard():
            return "[*]"
        case Descend(name):
            text = _member_text(name)
            return "." + text if text.startswith(".") else ".." + text


def path_text(path: JsonPath) -> str:
    """A concrete location as text: ``("items", 3, "ssn")`` -> ``$.items[3].ssn``."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else _member_text(p) for p in path)


def parse_selector(text: str) -> Selector:
    """Parse selector text; raise ValueError with a short reason when it is not valid."""
    if not isinstance(text, str) or not text:
        raise ValueError("a selector cannot be empty")
    if text.startswith("$"):
        return Selector("json", steps=_parse_steps(text))
    kind, sep, name = text.partition(":")
    if not sep or kind not in _KINDS:
        raise ValueError("a selector starts with $, form:, query: or header:")
    if not name or len(name) > 256 or _CONTROL.search(name):
        raise ValueError(f"{kind}: needs a name of 1-256 printable characters")
    if kind == "header":
        if not _HEADER_NAME.match(name):
            raise ValueError("header: needs a header field name")
        name = name.lower()
        if name in _GATEWAY_HEADERS or name.startswith("tokengate-"):
            raise ValueError(f"header '{name}' is managed by the gateway")
    return Selector(_KINDS[kind], name=name)


def _parse_steps(text: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        step, pos = _parse_step(text, pos)
        steps.append(step)
    if not steps:
        raise ValueError("'$' alone selects the whole body; name a field")
    return tuple(steps)


def _parse_descend(text: str, pos: int) -> tuple[Step, int]:
    """``..name`` / ``..['name']`` with ``pos`` just after the two dots."""
    if text.startswith("[", pos):
        name, end = _parse_quoted(text, pos)
        return Descend(name), end
    m = _IDENT.match(text, pos)
    if not m:
        raise ValueError(f"'..' must be followed by a member name (at character {pos})")
    return Descend(m.group()), m.end()


def _parse_step(text: str, pos: int) -> tuple[Step, int]:
    if text.startswith("..", pos):
        return _parse_descend(text, pos + 2)
    if text.startswith(".*", pos):
        return Wildcard(), pos + 2
    if text.startswith(".", pos):
        m = _IDENT.match(text, pos + 1)
        if not m:
            raise ValueError(f"'.' must be followed by a member name (at character {pos + 1})")
        return Member(m.group()), m.end()
    if text.startswith("[*]", pos):
        return Wildcard(), pos + 3
    if m := _INDEX.match(text, pos):
        return Index(int(m.group(1))), m.end()
    if text.startswith("['", pos) or text.startswith('["', pos):
        name, end = _parse_quoted(text, pos)
        return Member(name), end
    raise ValueError(f"unsupported selector syntax at character {pos}")


def _parse_quoted(text: str, pos: int) -> tuple[str, int]:
    """``['name']`` starting at ``pos`` (the ``[``) -> (name, position after ``]``)."""
    if pos + 1 >= len(text) or text[pos + 1] not in "'\"":
        raise ValueError(f"expected a quoted member name at character {pos}")
    quote, i, out = text[pos + 1], pos + 2, []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in ("\\", quote):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            if not text.startswith("]", i + 1):
                raise ValueError(f"expected ']' at character {i + 1}")
            if not out:
                raise ValueError("a quoted member name cannot be empty")
            return "".join(out), i + 2
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted member name")


# A selected location: (path, its text as path_text() writes it, parent, key, node).
type Slot = tuple[JsonPath, str, object, str | int, object]


def select_json(root: object, steps: tuple[Step, ...]) -> list[tuple[JsonPath, object]]:
    """Every (location, node) the steps reach in ``root``, without duplicates."""
    return [(slot[0], slot[4]) for slot in locate_json(root, steps)]


def locate_json(root: object, steps: tuple[Step, ...]) -> list[Slot]:
    """Every slot the steps reach in ``root``, without duplicates, in document order.

    A slot carries its parent and key so write-back needs no second walk, and
    its location text built step by step (no per-value formatting of the path).
    """
    current: list[Slot] = [((), "$", None, "", root)]
    for step in steps:
        current = _apply(step, current)
    unique: dict[JsonPath, Slot] = {}
    for slot in current:
        unique.setdefault(slot[0], slot)
    return list(unique.values())


def _apply(step: Step, current: list[Slot]) -> list[Slot]:
    """The slots one step reaches from each of ``current`` (one dispatch per step, not per slot)."""
    out: list[Slot] = []
    match step:
        case Member(name):
            text = _step_text(step)
            for path, at, _, _, node in current:
                if isinstance(node, dict) and name in node:
                    out.append(((*path, name), at + text, node, name, node[name]))
        case Index(index):
            text = _step_text(step)
            for path, at, _, _, node in current:
                if isinstance(node, list) and index < len(node):
                    out.append(((*path, index), at + text, node, index, node[index]))
        case Wildcard():
            for slot in current:
                _children(slot, out)
        case Descend(name):
            for slot in current:
                _descend(name, slot, out)
    return out


def _children(slot: Slot, out: list[Slot]) -> None:
    path, text, _, _, node = slot
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(((*path, key), text + _member_text(key), node, key, value))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append(((*path, i), f"{text}[{i}]", node, i, value))


def _descend(name: str, slot: Slot, out: list[Slot]) -> None:
    # Iterative, so a deeply nested body cannot exhaust the Python stack; texts
    # are made for the hits only, not for every node walked through.
    stack: list[tuple[JsonPath, object]] = [(slot[0], slot[4])]
    while stack:
        p, n = stack.pop()
        if isinstance(n, dict):
            if name in n:
                path = (*p, name)
                out.append((path, path_text(path), n, name, n[name]))
            stack.extend(((*p, k), v) for k, v in reversed(n.items()))
        elif isinstance(n, list):
            stack.extend(((*p, i), n[i]) for i in range(len(n) - 1, -1, -1))


def json_replace(root: object, path: JsonPath, value: object) -> None:
    """Write ``value`` at ``path`` (which a selection of ``root`` returned) in place."""
    parent, last = _parent(root, path)
    if isinstance(parent, dict) and isinstance(last, str):
        parent[last] = value
        return
    if isinstance(parent, list) and isinstance(last, int):
        parent[last] = value
        return
    raise ValueError("location does not exist")


def json_remove(root: object, path: JsonPath) -> None:
    """Drop the member at ``path``; an array element becomes null instead (indexes hold)."""
    parent, last = _parent(root, path)
    if isinstance(parent, dict) and isinstance(last, str):
        del parent[last]
    elif isinstance(parent, list) and isinstance(last, int):
        parent[last] = None
    else:
        raise ValueError("location does not exist")


def _parent(root: object, path: JsonPath) -> tuple[object, str | int]:
    if not path:
        raise ValueError("the body root cannot be written")
    node = root
    for part in path[:-1]:
        node = _child(node, part)
    return node, path[-1]


def _child(node: object, part: str | int) -> object:
    if isinstance(node, dict) and isinstance(part, str):
        return node[part]
    if isinstance(node, list) and isinstance(part, int):
        return node[part]
    raise ValueError("location does not exist")
